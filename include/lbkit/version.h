/*
 * lbkit/version.h - the one source of truth for lbkit's version numbers.
 *
 * meson.build reads LBK_VERSION_* and LBK_ABI_VERSION from this file, so the
 * project version, the shared library's SONAME and the pkg-config version
 * can never disagree with what a program sees at compile time.
 *
 * LBK_ABI_VERSION is bumped on every incompatible change to the binary
 * interface; it becomes the SONAME (liblbkit.so.<ABI>).
 */
#ifndef LBKIT_VERSION_H
#define LBKIT_VERSION_H

#define LBK_VERSION_MAJOR 0
#define LBK_VERSION_MINOR 1
#define LBK_VERSION_PATCH 0
#define LBK_ABI_VERSION 0

#define LBK_VERSION_NUMBER                                                     \
    (LBK_VERSION_MAJOR * 10000 + LBK_VERSION_MINOR * 100 + LBK_VERSION_PATCH)

#define LBK_STRINGIFY_(x) #x
#define LBK_STRINGIFY(x) LBK_STRINGIFY_(x)
#define LBK_VERSION_STRING                                                     \
    LBK_STRINGIFY(LBK_VERSION_MAJOR)                                           \
    "." LBK_STRINGIFY(LBK_VERSION_MINOR) "." LBK_STRINGIFY(LBK_VERSION_PATCH)

#endif /* LBKIT_VERSION_H */
