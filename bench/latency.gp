# Latency distributions of the benchmark run, as cumulative distributions.
# gnuplot -e "dir='build-bench/results'; out='docs/benchmarks-latency.png'" bench/latency.gp
# dir holds the dist-*.dat files esg_bench writes ("value fraction" lines).
if (!exists("dir")) dir = 'build-bench/results'
if (!exists("out")) out = 'docs/benchmarks-latency.png'

set terminal pngcairo size 1400,560 font ",10" noenhanced
set output out
set multiplot layout 1,2 title "eventsourcing-grpc for C: latency distributions (last run)"

set grid
set key bottom right
set logscale x
set ylabel "fraction of calls at or below"
set yrange [0:1]

# PostgreSQL's curves when it was measured (appended to the plots as macros).
has_pg = system("test -f '".dir."/dist-postgres-create_new_order.dat' && echo 1 || echo 0") + 0
pg_calls = has_pg ? ", dir.'/dist-postgres-create_new_order.dat' using 1:2 with lines lw 2 title 'PostgreSQL: create_new_order', dir.'/dist-postgres-get_order.dat' using 1:2 with lines lw 2 title 'PostgreSQL: get_order'" : ""
pg_paid = has_pg ? ", dir.'/dist-system-postgres-paid.dat' using 1:2 with lines lw 2 title 'PostgreSQL'" : ""

set title "One call from one client (sequential), microseconds"
set xlabel "latency (us)"
plot dir.'/dist-floor-ping.dat' using 1:2 with lines lw 2 dt 2 title "floor: Ping", \
     dir.'/dist-floor-call.dat' using 1:2 with lines lw 2 dt 2 title "floor: CallApplicationMethod", \
     dir.'/dist-memory-ping.dat' using 1:2 with lines lw 2 title "memory: Ping", \
     dir.'/dist-memory-create_new_order.dat' using 1:2 with lines lw 2 title "memory: create_new_order", \
     dir.'/dist-memory-get_order.dat' using 1:2 with lines lw 2 title "memory: get_order", \
     dir.'/dist-sqlite-create_new_order.dat' using 1:2 with lines lw 2 title "SQLite: create_new_order", \
     dir.'/dist-sqlite-get_order.dat' using 1:2 with lines lw 2 title "SQLite: get_order" @pg_calls

set title "Example system: an order from created to paid (one at a time), milliseconds"
set xlabel "created to paid (ms)"
plot dir.'/dist-system-memory-paid.dat' using 1:2 with lines lw 2 title "memory", \
     dir.'/dist-system-sqlite-paid.dat' using 1:2 with lines lw 2 title "SQLite" @pg_paid

unset multiplot
