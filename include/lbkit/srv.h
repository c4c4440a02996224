/*
 * lbkit/srv.h - RFC 2782 target selection for DNS SRV records.
 *
 * Answers "which SRV target do I contact next?" exactly as RFC 2782 says:
 * the lowest priority value first; within one priority, a weighted random
 * draw by the RFC's running-sum rule, weight-0 records placed first so that
 * they are chosen only with small probability.  Choose it over the pickers
 * in wrr.h / random.h when a client must follow the RFC (SIP, XMPP, LDAP,
 * Kerberos clients trying targets in turn) or wants the full try-order;
 * choose the backend set + a picker (tiers.h) for a long-lived proxy.
 * Cost: select O(n), order O(n log n + sum of g^2) for groups of g records
 * per priority (O(n^2) when all share one priority), no
 * memory beyond the caller's output array, no allocation at all.
 *
 * The rule (RFC 2782, "Weight"): among the records of the current priority
 * not yet ordered, put every weight-0 record first (their relative order is
 * the input order here), compute the running sum of weights in that order,
 * draw r uniformly from [0, sum] INCLUSIVE, and take the first record whose
 * running sum is >= r.  Consequences the RFC accepts and that lbkit keeps
 * (errata discussion of RFC 2782 notes them):
 *   - a weight-0 record is chosen first only when r == 0, i.e. with
 *     probability 1/(sum+1), and only the first weight-0 record can be;
 *   - with no weight-0 record the first record gets one extra share:
 *     weights {1, 1} give 2/3 and 1/3;
 *   - when every record of a priority has weight 0 they are ordered in
 *     input order (sum is 0, r is always 0).
 * A target of "." ("service decidedly not available") is not special here:
 * the DNS adapter (dns.h) drops it before calling these functions.
 */
#ifndef LBKIT_SRV_H
#define LBKIT_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One SRV record as it came from DNS (wire fields are 16-bit). */
typedef struct lbk_srv_record {
    const char *target; /* host name of the target; not read by selection */
    uint16_t port;
    uint16_t priority; /* lower is preferred */
    uint16_t weight;   /* relative, within one priority; 0 = last resort */
    uint32_t ttl;      /* seconds; not read by selection */
} lbk_srv_record;

/* Most records lbk_srv_select / lbk_srv_order accept in one call. */
#define LBK_SRV_MAX_RECORDS 65536u

/*
 * lbk_srv_select - the record a client contacts first: the lowest priority
 * value, then the RFC 2782 running-sum draw among that priority's records.
 * records, n: the record set (n >= 1).  random: 64 uniformly random bits
 * from the caller (the same value gives the same answer).
 * index_out: receives the index into records of the chosen record.
 * Errors: LBK_EINVAL (records or index_out NULL), LBK_ENOBACKEND (n == 0),
 * LBK_ERANGE (n > LBK_SRV_MAX_RECORDS).
 * Thread safety: safe from any thread (reads records only).
 */
LBK_API int lbk_srv_select(const lbk_srv_record *records, size_t n,
                           uint64_t random, size_t *index_out);

/*
 * lbk_srv_order - the full RFC 2782 order in which to try the records:
 * priorities ascending; within each, repeated running-sum draws over the
 * records not yet ordered.  Draws come from SplitMix64 seeded with seed, so
 * one seed always gives one order.
 * order_out: n indices into records, a permutation of 0..n-1.
 * Errors: LBK_EINVAL (records or order_out NULL with n > 0), LBK_ERANGE
 * (n > LBK_SRV_MAX_RECORDS).  n == 0 succeeds and writes nothing.
 * Thread safety: safe from any thread (reads records, writes order_out).
 */
LBK_API int lbk_srv_order(const lbk_srv_record *records, size_t n,
                          uint64_t seed, size_t *order_out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_SRV_H */
