/*
 * lbkit/lbkit.h - the umbrella header: includes every public lbkit header.
 *
 * Programs may include just the module headers they use; each one compiles
 * on its own.
 */
#ifndef LBKIT_LBKIT_H
#define LBKIT_LBKIT_H

#include "version.h"
#include "common.h"
#include "backend.h"

#endif /* LBKIT_LBKIT_H */
