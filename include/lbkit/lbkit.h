/*
 * lbkit/lbkit.h - the umbrella header: includes every public lbkit header.
 *
 * Programs may include just the module headers they use; each one compiles
 * on its own.  Where to look:
 *
 *   which backend gets this request     picker.h (one entry point), rr.h,
 *                                       wrr.h, random.h, leastconn.h,
 *                                       p2c.h, bandit.h
 *   which backend owns this key         ring.h (XXH3, libketama,
 *                                       libmemcached, nginx), maglev.h,
 *                                       jump.h, hrw.h, bounded.h, chord.h
 *   how many servers, how long a wait   queueing.h
 *   where are the instances             srv.h, tiers.h, reconcile.h, and
 *                                       the optional adapters dns.h, etcd.h
 *   what if they misbehave              outlier.h, slowstart.h, panic.h,
 *                                       healthcheck.h, breaker.h, retry.h,
 *                                       ratelimit.h
 *   the shared pieces                   common.h, backend.h, version.h
 */
#ifndef LBKIT_LBKIT_H
#define LBKIT_LBKIT_H

#include "version.h"
#include "common.h"
#include "backend.h"

#include "picker.h"
#include "rr.h"
#include "wrr.h"
#include "random.h"
#include "leastconn.h"
#include "p2c.h"
#include "bandit.h"

#include "ring.h"
#include "maglev.h"
#include "jump.h"
#include "hrw.h"
#include "bounded.h"
#include "chord.h"

#include "queueing.h"

#include "srv.h"
#include "tiers.h"
#include "reconcile.h"

#include "outlier.h"
#include "slowstart.h"
#include "panic.h"
#include "healthcheck.h"
#include "breaker.h"
#include "retry.h"
#include "ratelimit.h"

#endif /* LBKIT_LBKIT_H */
