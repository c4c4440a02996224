# gnuplot script for doc/THEORY.md (run from doc/theory/)
set terminal svg size 720,440 font 'sans,12'
set output 'balls.svg'
set logscale x
set xlabel 'n (bins = balls)'
set ylabel 'max load'
set key left top
plot 'balls.dat' u 1:2 w lp t 'd = 1 (measured)', \
     '' u 1:5 w l dt 2 t 'ln n / ln ln n', \
     '' u 1:3 w lp t 'd = 2 (measured)', \
     '' u 1:6 w l dt 2 t 'ln ln n / ln 2', \
     '' u 1:4 w lp t 'd = 3 (measured)', \
     '' u 1:7 w l dt 2 t 'ln ln n / ln 3'
set output 'supermarket.svg'
unset logscale x
set xlabel 'lambda'
set ylabel 'mean time in system'
set logscale y
plot 'supermarket.dat' u ($1==2?$2:1/0):3 w lp t 'd=2, n=10', \
     '' u ($1==2?$2:1/0):4 w lp t 'd=2, n=100', \
     '' u ($1==2?$2:1/0):5 w lp t 'd=2, n=1000', \
     '' u ($1==2?$2:1/0):6 w l dt 2 lw 2 t 'T_2(lambda), n -> inf'
