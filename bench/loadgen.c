/* Load generator for the pcapsleuth benchmark capture (see bench/README.md).
 *
 * Runs inside a network namespace, on loopback: server threads accept on several ports, client
 * threads open connections from many source addresses, so that hundreds of thousands of real
 * kernel TCP connections happen in well under a minute without reusing a 4-tuple. Python cannot
 * open connections this fast on two cores, so this is C, compiled by make_capture.py at bench time.
 *
 * Connection mix, chosen per connection number from a fixed pseudo-random sequence (same seed,
 * same mix):
 *   clean     request (40-400 bytes), response in 1-4 segments (48-900 bytes each), the client
 *             closes first (FIN/FIN), so TIME-WAIT sits on the client and keeps its port
 *   refused   connect to a port nobody listens on: SYN answered by RST
 *   reset-c   the client reads the response, then closes with SO_LINGER 0: RST from the client
 *   reset-s   the server reads the 8-byte header only and closes with the rest unread: the kernel
 *             answers with a RST (RFC 2525 section 2.17)
 *
 * usage: loadgen CONNS CLIENT_THREADS PORTS BASE_PORT V4_SOURCES V6_SOURCES V6_PERCENT
 *                REFUSED_PERCENT RESET_PERCENT SEED RATE
 * RATE is connections started per second (connection j starts j/RATE s after the first); 0 opens
 * them as fast as the threads can.
 * Source addresses are 127.0.1.1 ... and fd00:b::1 ... (make_capture.py adds the IPv6 ones to lo).
 * Prints one line of counts on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { CLEAN, REFUSED, RESET_CLIENT, RESET_SERVER };

static long conns;
static int threads, ports, base_port, v4_sources, v6_sources, v6_pct, refused_pct, reset_pct;
static uint64_t seed;
static double rate;
static struct timespec t_start;
static atomic_long next_conn;
static atomic_long n_clean, n_refused, n_reset_c, n_reset_s, n_errors;

struct header {  /* first 8 bytes of every request */
    uint16_t req_len;
    uint16_t chunk_len;
    uint8_t chunks;
    uint8_t mode;
    uint16_t pad;
};

static uint64_t mix64(uint64_t x) {  /* splitmix64: per-connection pseudo-random numbers */
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return -1;
        }
        put += (size_t)w;
    }
    return 0;
}

static char filler[65536];

/* ---- server ---------------------------------------------------------------------------------- */

static void *server(void *arg) {
    int lfd = (int)(intptr_t)arg;
    char buf[4096];
    int one = 1;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct header h;
        if (read_full(fd, (char *)&h, sizeof h) < 0) goto done;
        if (h.mode == RESET_SERVER) {
            /* Make sure the rest of the request has arrived, then close with it unread. */
            char peekbuf[1];
            recv(fd, peekbuf, 1, MSG_PEEK);
            goto done;
        }
        if (h.req_len > sizeof h && read_full(fd, buf, h.req_len - sizeof h) < 0) goto done;
        for (int i = 0; i < h.chunks; i++)
            if (write_full(fd, filler, h.chunk_len) < 0) goto done;
        /* Wait for the client's FIN (clean) or RST (reset-c), then close our side. */
        while (read(fd, buf, sizeof buf) > 0) {}
    done:
        close(fd);
    }
    return NULL;
}

/* ---- client ---------------------------------------------------------------------------------- */

static void *client(void *arg) {
    (void)arg;
    char buf[65536];
    int one = 1;
    for (;;) {
        long j = atomic_fetch_add(&next_conn, 1);
        if (j >= conns) break;
        if (rate > 0) {  /* pace: connection j starts at t_start + j / rate */
            double at = (double)j / rate;
            struct timespec when = t_start;
            when.tv_sec += (time_t)at;
            when.tv_nsec += (long)((at - (double)(time_t)at) * 1e9);
            if (when.tv_nsec >= 1000000000L) { when.tv_sec++; when.tv_nsec -= 1000000000L; }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR) {}
        }
        uint64_t r = mix64(seed ^ (uint64_t)j);
        int pick = (int)(r % 100);
        int kind = pick < refused_pct ? REFUSED
                 : pick < refused_pct + reset_pct / 2 ? RESET_CLIENT
                 : pick < refused_pct + reset_pct ? RESET_SERVER : CLEAN;
        int v6 = (int)((r >> 8) % 100) < v6_pct;
        int port = kind == REFUSED ? base_port - 1 : base_port + (int)((r >> 16) % (uint64_t)ports);
        struct header h = {
            .req_len = (uint16_t)(40 + (r >> 24) % 361),
            .chunk_len = (uint16_t)(48 + (r >> 34) % 853),
            .chunks = (uint8_t)(1 + (r >> 46) % 4),
            .mode = (uint8_t)kind,
        };
        int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { atomic_fetch_add(&n_errors, 1); continue; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Bind the source address only; the port is chosen at connect() against the full 4-tuple. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        int rc;
        if (v6) {
            struct sockaddr_in6 src = {.sin6_family = AF_INET6}, dst = {.sin6_family = AF_INET6};
            char text[64];
            snprintf(text, sizeof text, "fd00:b::%lx", 1 + (j / 7) % (unsigned long)v6_sources);
            inet_pton(AF_INET6, text, &src.sin6_addr);
            inet_pton(AF_INET6, "fd00:b::ffff", &dst.sin6_addr);
            dst.sin6_port = htons((uint16_t)port);
            bind(fd, (struct sockaddr *)&src, sizeof src);
            rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
        } else {
            struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
            long k = (j / 7) % v4_sources;
            src.sin_addr.s_addr = htonl(0x7F000100u + 1u + (uint32_t)(k % 250) + 256u * (uint32_t)(k / 250));
            dst.sin_addr.s_addr = htonl(0x7F000001u);
            dst.sin_port = htons((uint16_t)port);
            bind(fd, (struct sockaddr *)&src, sizeof src);
            rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
        }
        if (rc < 0) {
            if (errno == ECONNREFUSED && kind == REFUSED) atomic_fetch_add(&n_refused, 1);
            else atomic_fetch_add(&n_errors, 1);
            close(fd);
            continue;
        }
        if (kind == REFUSED) {  /* somebody listens on the closed port?! */
            atomic_fetch_add(&n_errors, 1);
            close(fd);
            continue;
        }
        memcpy(buf, &h, sizeof h);
        memset(buf + sizeof h, 'q', h.req_len - sizeof h);
        if (write_full(fd, buf, h.req_len) < 0) { atomic_fetch_add(&n_errors, 1); close(fd); continue; }
        if (kind == RESET_SERVER) {
            while (read(fd, buf, sizeof buf) > 0) {}  /* ends with ECONNRESET (or EOF) */
            atomic_fetch_add(&n_reset_s, 1);
            close(fd);
            continue;
        }
        if (read_full(fd, buf, (size_t)h.chunk_len * h.chunks) < 0) {
            atomic_fetch_add(&n_errors, 1);
            close(fd);
            continue;
        }
        if (kind == RESET_CLIENT) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            atomic_fetch_add(&n_reset_c, 1);
        } else {
            atomic_fetch_add(&n_clean, 1);
        }
        close(fd);
    }
    return NULL;
}

static int listen_on(int family, int port) {
    int fd = socket(family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        inet_pton(AF_INET6, "fd00:b::ffff", &a.sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(0x7F000001u);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc < 0 || listen(fd, 4096) < 0) {
        perror("loadgen: listen");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 12) {
        fprintf(stderr, "usage: loadgen CONNS CLIENT_THREADS PORTS BASE_PORT V4_SOURCES V6_SOURCES V6_PERCENT "
                        "REFUSED_PERCENT RESET_PERCENT SEED RATE\n");
        return 2;
    }
    conns = atol(argv[1]);
    threads = atoi(argv[2]);
    ports = atoi(argv[3]);
    base_port = atoi(argv[4]);
    v4_sources = atoi(argv[5]);
    v6_sources = atoi(argv[6]);
    v6_pct = atoi(argv[7]);
    refused_pct = atoi(argv[8]);
    reset_pct = atoi(argv[9]);
    seed = strtoull(argv[10], NULL, 10);
    rate = atof(argv[11]);
    memset(filler, 'r', sizeof filler);
    /* Servers: per port and family, enough blocking accept threads for every client thread. */
    for (int p = 0; p < ports; p++) {
        for (int fam = 0; fam < 2; fam++) {
            int lfd = listen_on(fam ? AF_INET6 : AF_INET, base_port + p);
            int per = threads / ports + 2;
            for (int i = 0; i < per; i++) {
                pthread_t t;
                pthread_attr_t at;
                pthread_attr_init(&at);
                pthread_attr_setstacksize(&at, 256 * 1024);
                pthread_create(&t, &at, server, (void *)(intptr_t)lfd);
                pthread_detach(t);
            }
        }
    }
    pthread_t *cl = calloc((size_t)threads, sizeof *cl);
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    for (int i = 0; i < threads; i++) pthread_create(&cl[i], NULL, client, NULL);
    for (int i = 0; i < threads; i++) pthread_join(cl[i], NULL);
    usleep(200000);  /* let the servers see the last FINs and close */
    printf("clean=%ld refused=%ld reset_client=%ld reset_server=%ld errors=%ld\n", atomic_load(&n_clean),
           atomic_load(&n_refused), atomic_load(&n_reset_c), atomic_load(&n_reset_s), atomic_load(&n_errors));
    return 0;
}
