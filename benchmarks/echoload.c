/*
 * echoload.c - epoll-based TCP echo load generator.
 *
 * poorio's benchmark suite builds this with `cc -O2` when it runs (see
 * benchmarks/machine.py) and pins it to a core of its own with taskset.
 * Taken from the project's shared tools; the suite adds a hard ceiling on
 * the whole run (alarm: connect timeout + longest warm-up + duration + 5 s),
 * and the steady-state machinery below (-W, -S, -C).
 *
 *   cc -O2 -o echoload echoload.c
 *   ./echoload [-h host] [-p port] [-c conns] [-s size] [-d secs] [-w secs]
 *              [-W max_warmup_secs] [-S slice_secs] [-T tolerance]
 *              [-C server_pid] [-P depth] [-t connect_timeout_secs]
 *
 * Opens C connections to HOST:PORT.  Each connection sends messages of S
 * bytes and reads back exactly what it sent, verifying every byte.  With the
 * default depth 1 this is strict ping-pong: write S bytes, read S bytes,
 * repeat.  With -P N (pipelined mode) up to N messages are in flight per
 * connection.  After W seconds of warm-up, round trips and their latencies are
 * recorded for D seconds, then one JSON line is printed on stdout.
 *
 * Steady state: round trips are counted in slices of -S seconds (default
 * 0.5) from the first byte on.  With -W MAX the warm-up is adaptive: it lasts
 * at least -w seconds and then goes on until the last three slices agree
 * (max - min <= tolerance x their mean, -T, default 0.05), or until MAX
 * seconds; "warmup_stable" says which.  The measured window is split in two
 * halves whose rates are reported apart ("halves"), so the caller can check
 * that the window itself was steady.  With -C PID the server's CPU time
 * (/proc/PID/stat) is read at the window's start, middle and end, and the
 * whole machine's (/proc/stat) at its start and end: "server_cpu_pct" is the
 * server's share of one core during the window, "machine_cpu_pct" every
 * process's together (100 = one core busy), so other processes' use during
 * the window is machine - server - echoload.
 *
 * Data check: each connection's byte stream is a window onto one shared
 * pseudo-random pattern of period PERIOD, starting at a per-connection offset.
 * Because S is (in general) not a multiple of PERIOD, consecutive messages
 * differ too, so stale, reordered, dropped or cross-connection bytes all show
 * up as mismatches.
 *
 * Output fields: rt_per_s counts completed round trips (one message out and
 * back); bytes_per_s is payload bytes echoed per second, counted once (not
 * once per direction); latency is per message, from the moment it was queued
 * for writing until its last byte was read back; cpu_pct is echoload's own
 * CPU time (user+system) during the measurement, as a percentage of one core.
 * "series" holds the rate of every whole slice of the warm-up, "window_series"
 * those of the window; "total_round_trips" counts every phase (for per-round-
 * trip costs measured from outside, e.g. syscalls under strace).
 *
 * Exit status: 0 ok; 1 connect failure, mismatched data, a connection
 * error/EOF during the run, or no round trip at all; 2 usage error.
 * On a connect failure a JSON line {"error": "..."} is printed instead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 4093           /* prime, so message offsets keep shifting */
#define CHUNK  65536          /* max bytes per recv()/send() call */
#define MAXEV  512
#define HBUCKETS (64 * 40)    /* log-linear latency histogram, ~1.6% bins */

typedef struct {
    int fd, id;
    int connected, dead;
    uint32_t base;            /* offset of this connection in the pattern */
    uint64_t wpos, wend;      /* stream bytes written / queued for writing */
    uint64_t rpos;            /* stream bytes read back and verified */
    uint64_t sent_msgs, done_msgs;
    double *t_send;           /* ring[depth]: start time of each in-flight msg */
    int want_out;             /* EPOLLOUT currently registered */
} conn_t;

static int ep, depth = 1, alive;
static size_t msg_size = 1024;
static unsigned char *pattern;   /* PERIOD + max(CHUNK, S) bytes, periodic */
static unsigned char rbuf[CHUNK];
static int measuring;
static uint64_t round_trips, errors, mismatches, hist[HBUCKETS];
static uint64_t all_round_trips;   /* every phase, warm-up included */
static double lat_max;

#define MAXSLICES 4096
#define STABLE_SLICES 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Histogram index for a latency in microseconds: exact below 128, then
 * 64 linear sub-buckets per power of two. */
static int hist_index(uint64_t v)
{
    int shift = v < 128 ? 0 : 63 - __builtin_clzll(v) - 6;
    int idx = shift * 64 + (int)(v >> shift);
    return idx < HBUCKETS ? idx : HBUCKETS - 1;
}

static double hist_value(int idx)   /* midpoint of a bucket, in us */
{
    if (idx < 128) return idx;
    int shift = idx / 64 - 1;
    return (double)((uint64_t)(idx - shift * 64) << shift) + ((1u << shift) - 1) / 2.0;
}

static double percentile(double q)
{
    uint64_t want = (uint64_t)(q * round_trips), seen = 0;
    if (want >= round_trips && round_trips) want = round_trips - 1;
    for (int i = 0; i < HBUCKETS; i++)
        if ((seen += hist[i]) > want) return hist_value(i);
    return 0;
}

static void set_events(conn_t *c, int out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
    if (c->want_out != out && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = out;
}

static void kill_conn(conn_t *c, const char *why)
{
    if (c->dead) return;
    fprintf(stderr, "echoload: conn %d: %s\n", c->id, why);
    c->dead = 1;
    alive--;
    close(c->fd);           /* also removes it from the epoll set */
}

/* Queue new messages while the pipeline window has room, then write as much
 * of the queued bytes as the socket takes; wait for EPOLLOUT for the rest. */
static void pump_writes(conn_t *c, double t)
{
    while (c->sent_msgs - c->done_msgs < (uint64_t)depth) {
        c->t_send[c->sent_msgs++ % depth] = t;
        c->wend += msg_size;
    }
    while (c->wpos < c->wend) {
        size_t n = c->wend - c->wpos < CHUNK ? c->wend - c->wpos : CHUNK;
        ssize_t w = send(c->fd, pattern + (c->base + c->wpos) % PERIOD, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        if (w <= 0) { errors++; kill_conn(c, strerror(errno)); return; }
        c->wpos += w;
    }
    set_events(c, c->wpos < c->wend);
}

/* Read echoed bytes, verify them, and complete any finished messages. */
static void handle_read(conn_t *c, double t)
{
    ssize_t n = recv(c->fd, rbuf, CHUNK, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { errors++; kill_conn(c, n ? strerror(errno) : "closed by peer"); return; }
    if ((uint64_t)n > c->wpos - c->rpos ||
        memcmp(rbuf, pattern + (c->base + c->rpos) % PERIOD, n) != 0) {
        mismatches++; kill_conn(c, "echoed data mismatch"); return;
    }
    c->rpos += n;
    while (c->rpos >= (c->done_msgs + 1) * msg_size) {   /* message complete */
        all_round_trips++;
        if (measuring) {
            double us = (t - c->t_send[c->done_msgs % depth]) * 1e6;
            hist[hist_index((uint64_t)us)]++;
            if (us > lat_max) lat_max = us;
            round_trips++;
        }
        c->done_msgs++;
    }
    pump_writes(c, t);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* utime + stime of process `pid` in seconds, or -1 (no such process, no /proc). */
static double proc_cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* Seconds of CPU every process used so far (all cores, /proc/stat), or -1. */
static double machine_busy_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                     &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 4) return -1;
    /* user nice system idle iowait irq softirq steal: busy is all but idle and iowait */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / sysconf(_SC_CLK_TCK);
}

/* Whether the last STABLE_SLICES rates agree: max - min <= tol x mean. */
static int stable(const double *rate, int n, double tol)
{
    if (n < STABLE_SLICES) return 0;
    double lo = rate[n - 1], hi = lo, sum = 0;
    for (int i = n - STABLE_SLICES; i < n; i++) {
        if (rate[i] < lo) lo = rate[i];
        if (rate[i] > hi) hi = rate[i];
        sum += rate[i];
    }
    return sum > 0 && hi - lo <= tol * sum / STABLE_SLICES;
}

static void print_series(const char *name, const double *rate, int from, int to)
{
    printf("\"%s\": [", name);
    for (int i = from; i < to; i++) printf("%s%.0f", i > from ? ", " : "", rate[i]);
    printf("]");
}

/* Connection setup failed: say so on stderr and as JSON, exit 1. */
static void fail(const char *what, const char *why)
{
    fprintf(stderr, "echoload: %s: %s\n", what, why);
    printf("{\"error\": \"%s: %s\"}\n", what, why);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: echoload [-h host] [-p port] [-c conns] [-s size] "
                    "[-d secs] [-w warmup_secs] [-W max_warmup_secs] [-S slice_secs] [-T tolerance] "
                    "[-C server_pid] [-P pipeline_depth] [-t connect_timeout]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "25000";
    int nconn = 100, opt, server_pid = 0;
    double duration = 10, warmup = 1, max_warmup = 0, slice = 0.5, tol = 0.05, conn_timeout = 10;

    while ((opt = getopt(argc, argv, "h:p:c:s:d:w:W:S:T:C:P:t:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'c': nconn = atoi(optarg); break;
        case 's': msg_size = strtoul(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'W': max_warmup = atof(optarg); break;
        case 'S': slice = atof(optarg); break;
        case 'T': tol = atof(optarg); break;
        case 'C': server_pid = atoi(optarg); break;
        case 'P': depth = atoi(optarg); break;
        case 't': conn_timeout = atof(optarg); break;
        default: usage();
        }
    }
    if (nconn < 1 || msg_size < 1 || depth < 1 || duration <= 0 || warmup < 0 || slice <= 0 || tol <= 0) usage();
    if (max_warmup < warmup) max_warmup = warmup;   /* no -W: a fixed warm-up of -w seconds */
    alarm((unsigned)(conn_timeout + max_warmup + duration) + 5);

    /* Allow many sockets: raise the fd soft limit to the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) fail("getaddrinfo", gai_strerror(gai));

    /* Shared periodic pattern; long enough that any CHUNK- or S-byte slice
     * starting below PERIOD can be taken without wrapping. */
    size_t plen = PERIOD + (msg_size > CHUNK ? msg_size : CHUNK);
    pattern = malloc(plen);
    uint32_t seed = 2463534242u;
    for (size_t i = 0; i < plen; i++) {
        if (i < PERIOD) { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; pattern[i] = seed >> 24; }
        else pattern[i] = pattern[i - PERIOD];
    }

    ep = epoll_create1(0);
    conn_t *conns = calloc(nconn, sizeof *conns);
    double *ring = calloc((size_t)nconn * depth, sizeof *ring);
    struct epoll_event evs[MAXEV];

    /* Phase 0: non-blocking connect of every connection. */
    for (int i = 0; i < nconn; i++) {
        conn_t *c = &conns[i];
        c->id = i;
        c->base = (uint32_t)(((uint64_t)i * 2654435761u) % PERIOD);
        c->t_send = ring + (size_t)i * depth;
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, 0);
        int one = 1;
        if (c->fd < 0) fail("socket", strerror(errno));
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) c->connected = 1;
        else if (errno != EINPROGRESS) fail("connect", strerror(errno));
        /* Wait for EPOLLOUT (connect completion) only if still in progress. */
        c->want_out = !c->connected;
        struct epoll_event ev = { .events = c->want_out ? EPOLLOUT : EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    alive = nconn;
    int pending = 0;
    for (int i = 0; i < nconn; i++) pending += !conns[i].connected;
    double deadline = now() + conn_timeout;
    while (pending > 0) {
        int n = epoll_wait(ep, evs, MAXEV, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int err = 0; socklen_t len = sizeof err;
            if (c->connected) continue;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) fail("connect", strerror(err));
            c->connected = 1; pending--;
            set_events(c, 0);
        }
        if (pending > 0 && now() > deadline) fail("connect", "timed out");
    }

    /* Phase 1 (warm-up) and phase 2 (measurement) share the same loop.  The
     * warm-up ends at t0 + warmup when it is fixed; when it is adaptive, at the
     * first slice boundary past that where the last slices agree (or at
     * t0 + max_warmup).  The window's middle splits it into its two halves. */
    static double rate[MAXSLICES];
    int nslices = 0, warm_slices = 0, stable_end = 0;
    uint64_t slice_rt0 = 0, half_rt = 0;
    double t0 = now(), t_measure = t0 + warmup, t_end = 1e300, t_half = 0;
    double t_slice = t0 + slice, cpu0 = 0, t_start = t0;
    double srv0 = -1, srv_half = -1, srv1 = -1, mach0 = -1, mach1 = -1;
    int adaptive = max_warmup > warmup;
    if (adaptive) t_measure = 1e300;         /* decided at a slice boundary */
    for (int i = 0; i < nconn; i++) pump_writes(&conns[i], t0);
    for (;;) {
        double t = now();
        while (t >= t_slice) {               /* close every slice that ended */
            if (nslices < MAXSLICES) rate[nslices++] = (all_round_trips - slice_rt0) / slice;
            slice_rt0 = all_round_trips;
            t_slice += slice;
            if (!measuring && adaptive && t_slice - slice >= t0 + warmup - 1e-6) {
                if (stable(rate, nslices, tol)) { stable_end = 1; t_measure = t; }
                else if (t - t0 >= max_warmup) t_measure = t;
            }
        }
        if (!measuring && t >= t_measure) {
            measuring = 1; t_start = t; t_end = t + duration; t_half = t + duration / 2;
            warm_slices = nslices;
            cpu0 = cpu_seconds();
            if (server_pid) { srv0 = proc_cpu_seconds(server_pid); mach0 = machine_busy_seconds(); }
        }
        if (measuring && t_half && t >= t_half) {
            half_rt = round_trips; t_half = 0;
            if (server_pid) srv_half = proc_cpu_seconds(server_pid);
        }
        if (t >= t_end) break;
        double next = measuring ? (t_half ? t_half : t_end) : t_measure;
        if (t_slice < next) next = t_slice;
        int timeout_ms = (int)((next - t) * 1000) + 1;
        int n = epoll_wait(ep, evs, MAXEV, timeout_ms);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            double te = now();
            if (c->dead) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) handle_read(c, te);
            if (!c->dead && (evs[i].events & EPOLLOUT)) pump_writes(c, te);
        }
        if (alive == 0) break;   /* every connection failed: stop early */
    }
    double t_stop = now(), elapsed = t_stop - t_start, cpu = cpu_seconds() - cpu0;
    if (server_pid) { srv1 = proc_cpu_seconds(server_pid); mach1 = machine_busy_seconds(); }
    double h = duration / 2;
    double first = half_rt / h, second = (round_trips - half_rt) / (elapsed - h > 0 ? elapsed - h : h);

    printf("{\"connections\": %d, \"size\": %zu, \"depth\": %d, \"seconds\": %.3f, "
           "\"round_trips\": %llu, \"rt_per_s\": %.1f, \"bytes_per_s\": %.0f, "
           "\"latency_us\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}, "
           "\"errors\": %llu, \"mismatches\": %llu, \"cpu_pct\": %.1f, "
           "\"total_round_trips\": %llu, \"warmup_s\": %.2f, \"warmup_stable\": %s, "
           "\"halves\": [%.1f, %.1f], ",
           nconn, msg_size, depth, elapsed, (unsigned long long)round_trips,
           round_trips / elapsed, (double)msg_size * round_trips / elapsed,
           percentile(0.50), percentile(0.99), lat_max,
           (unsigned long long)errors, (unsigned long long)mismatches,
           100.0 * cpu / elapsed, (unsigned long long)all_round_trips,
           t_start - t0, adaptive ? (stable_end ? "true" : "false") : "null", first, second);
    if (srv0 >= 0 && srv_half >= 0 && srv1 >= 0)
        printf("\"server_cpu_pct\": %.1f, \"server_cpu_halves\": [%.1f, %.1f], ",
               100.0 * (srv1 - srv0) / elapsed, 100.0 * (srv_half - srv0) / h,
               100.0 * (srv1 - srv_half) / (elapsed - h > 0 ? elapsed - h : h));
    if (mach0 >= 0 && mach1 >= 0)
        printf("\"machine_cpu_pct\": %.1f, ", 100.0 * (mach1 - mach0) / elapsed);
    print_series("series", rate, 0, warm_slices);
    printf(", ");
    print_series("window_series", rate, warm_slices, nslices);
    printf("}\n");
    fflush(stdout);
    return (errors || mismatches || round_trips == 0) ? 1 : 0;
}
