#!/usr/bin/env python3
"""Generate the Temme coefficient tables of lib/queueing.c.

Run from anywhere (Python 3 standard library only; --check needs mpmath):

    python3 tools/gen_temme.py            # print the C tables
    python3 tools/gen_temme.py --check    # also compare Q(s, x) with mpmath

It prints, on stdout, the eight `static const double temme_cK[...]` arrays
(K = 0..7) with exactly the values and lengths lib/queueing.c holds, one
array per line, followed by the `temme_len` initializer; paste them over the
old ones (then clang-format) when changing the truncation.  With --check it then prints, on stderr, the relative error of
the truncated expansion against mpmath's regularized incomplete gamma at a
few (s, x) points inside the region where lib/queueing.c uses it.

What it computes.  Temme's uniform expansion of the regularized upper
incomplete gamma function, for lam = x / s,

    Q(s, x) = erfc(eta sqrt(s/2)) / 2
              + exp(-s eta^2 / 2) / sqrt(2 pi s) * sum_k C_k(eta) s^-k,
    eta^2 / 2 = lam - 1 - ln lam,  sign(eta) = sign(lam - 1),

needs the Taylor coefficients of each C_k(eta) about eta = 0.  Everything is
done in exact rationals (fractions.Fraction):

  1. With mu = lam - 1, h(mu) = 2 (mu - ln(1 + mu)) / mu^2 is a power series
     with h(0) = 1, and eta = mu sqrt(h(mu)).  Lagrange inversion gives
     mu(eta) = sum b_n eta^n with b_n = [mu^(n-1)] h(mu)^(-n/2) / n.
  2. w(eta) = eta / mu(eta) is a power series (w(0) = 1), so
     1/mu = w / eta and C_0 = 1/mu - 1/eta = (w - 1) / eta.
  3. C_k = (1/eta) dC_(k-1)/deta + (-1)^k g_k / mu; the constant g_k is the
     one that cancels the 1/eta pole, and comes out as the Stirling series
     coefficients 1, 1/12, 1/288, -139/51840, ... (printed with --check as a
     self-test of the recurrence).

Each table keeps the fewest terms whose tail, summed in absolute value at
|eta| = 0.6, is below 1e-19 * 200^k: lib/queueing.c uses the expansion only
for N > 200 and |eta| <= 0.6, so the truncation error stays below 1e-19
relative to the leading term.
"""
import sys
from fractions import Fraction

KMAX = 8  # C_0 .. C_7
DEGREE = 30  # Taylor terms computed per C_k before truncation
ETA_MAX = Fraction(3, 5)  # |eta| bound where lib/queueing.c uses Temme
N_MIN = 200  # smallest N that reaches the expansion
TAIL = 1e-19


def series_power(h, alpha, n):
    """First n coefficients of h^alpha for a power series with h[0] = 1
    (J. C. P. Miller's recurrence)."""
    y = [Fraction(1)] + [Fraction(0)] * (n - 1)
    for m in range(1, n):
        s = Fraction(0)
        for k in range(1, m + 1):
            s += ((alpha + 1) * k - m) * h[k] * y[m - k]
        y[m] = s / m
    return y


def temme_coefficients(kmax, degree):
    """[C_k Taylor coefficients] for k < kmax, plus the g_k constants."""
    depth = degree + 2 * kmax + 4  # each C_k step consumes two orders
    h = [Fraction(2 * (-1) ** k, k + 2) for k in range(depth + 2)]
    b = [Fraction(0)] * (depth + 2)  # mu(eta) = sum b_n eta^n
    for n in range(1, depth + 2):
        b[n] = series_power(h, Fraction(-n, 2), n)[n - 1] / n
    p = b[1:]  # mu / eta
    w = [Fraction(0)] * len(p)  # eta / mu = 1 / (mu / eta)
    w[0] = Fraction(1)
    for m in range(1, len(p)):
        w[m] = -sum(p[k] * w[m - k] for k in range(1, m + 1))
    tables = [w[1:]]  # C_0 = (w - 1) / eta
    gammas = [Fraction(1)]
    for k in range(1, kmax):
        prev = tables[-1]
        der = [n * prev[n] for n in range(1, len(prev))]  # d/deta, from eta^0
        sign = (-1) ** k
        g = -der[0] * sign  # cancels the eta^-1 term of der / eta
        gammas.append(g)
        size = min(len(der) - 1, len(w) - 1)
        tables.append([der[j + 1] + sign * g * w[j + 1] for j in range(size)])
    return tables, gammas


def truncate(coeffs, k):
    """The fewest leading terms whose dropped tail is negligible."""
    c = [float(x) for x in coeffs]
    bound = TAIL * float(N_MIN) ** k
    eta = float(ETA_MAX)
    for m in range(1, len(c)):
        tail = sum(abs(x) * eta**n for n, x in enumerate(c) if n >= m)
        if tail <= bound:
            return c[:m]
    return c


def emit(tables):
    lens = []
    for k, coeffs in enumerate(tables):
        c = truncate(coeffs, k)
        lens.append(len(c))
        body = ", ".join("%.17g" % x for x in c)
        print("static const double temme_c%d[%d] = {%s};" % (k, len(c), body))
    print("static const int temme_len[%d] = {%s};" % (len(lens), ", ".join(map(str, lens))))


def check(tables, gammas):
    import mpmath as mp

    mp.mp.dps = 40
    print("g_k:", ", ".join(str(g) for g in gammas), file=sys.stderr)
    kept = [truncate(c, k) for k, c in enumerate(tables)]
    for s, x in [(201, 180), (1000, 1000), (1000, 1400), (201, 110), (10**6, 10**6 - 3000)]:
        s, x = mp.mpf(s), mp.mpf(x)
        lam = x / s
        eta = mp.sign(lam - 1) * mp.sqrt(2 * (lam - 1 - mp.log(lam)))
        total = sum(
            sum(mp.mpf(c) * eta**n for n, c in enumerate(ck)) * s ** (-k)
            for k, ck in enumerate(kept)
        )
        q = mp.erfc(eta * mp.sqrt(s / 2)) / 2 + mp.exp(-s * eta**2 / 2) / mp.sqrt(2 * mp.pi * s) * total
        ref = mp.gammainc(s, x, mp.inf, regularized=True)
        print("s=%s x=%s eta=%s rel.err %s" % (s, x, mp.nstr(eta, 3), mp.nstr((q - ref) / ref, 3)), file=sys.stderr)


def main():
    tables, gammas = temme_coefficients(KMAX, DEGREE)
    emit(tables)
    if "--check" in sys.argv[1:]:
        check(tables, gammas)


if __name__ == "__main__":
    main()
