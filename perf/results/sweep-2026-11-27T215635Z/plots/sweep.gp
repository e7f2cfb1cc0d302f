set terminal pngcairo size 900,560
set output '/work/main/perf/results/sweep-2026-11-27T215635Z/sweep.png'
set grid
set title 'Each variant relative to the baseline of the same run'
set datafile missing '?'
set style data histograms
set style histogram clustered
set style fill solid 0.8 border -1
set termoption noenhanced
set key above
set xtics rotate by -30
set yrange [0:*]
set ylabel 'variant / baseline'
plot '/work/main/perf/results/sweep-2026-11-27T215635Z/plots/sweep.dat' using 2:xtic(1) title 'throughput (higher is better)', '' using 3 title 'CPU per GB (lower is better)', 1 notitle lc rgb 'black'
