# doc/chord_paths.gp - Chord path length against the number of nodes.
#
# Data: doc/chord_paths.dat, made by lbkit-chord (see doc/CHORD.md):
#   columns  log2(N)  N  mean  p1  p99  (1/2) log2(N)
# Run from the repository root:  gnuplot doc/chord_paths.gp
set terminal svg size 720,440 dynamic font "sans,12"
set output "doc/chord_paths.svg"
set title "Chord lookup path length (20000 lookups per point, fingers only)"
set xlabel "number of nodes N"
set ylabel "path length (forwarding hops to the key's predecessor)"
set logscale x 2
set format x "2^{%L}"
set xrange [6:1.5e6]
set yrange [0:*]
set key top left
set grid
plot "doc/chord_paths.dat" using 2:3:4:5 with yerrorbars lc rgb "#1f77b4" \
         title "lbkit-chord: mean, 1st and 99th percentiles", \
     "" using 2:3 with lines lc rgb "#1f77b4" notitle, \
     "" using 2:6 with lines dt 2 lw 2 lc rgb "#d62728" \
         title "paper: (1/2) log_2 N"
