/*
 * echoserver.c - the C reference point for the echo scenario: one thread,
 * level-triggered epoll, read up to 64 KiB and write it straight back.
 *
 *   cc -O2 -o echoserver echoserver.c
 *   ./echoserver [max_seconds]
 *
 * Listens on 127.0.0.1 on a port the kernel picks and prints "PORT <n>" on
 * stdout.  It is the ceiling of what the load generator can measure on this
 * machine: a Python server that comes close to it is limited by echoload, not
 * by itself.  It exits by itself after max_seconds (default 300), so a lost
 * runner never leaves it behind.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXEV 512
#define BUFSZ 65536

/* Per-connection bytes received but not yet written back (short writes). */
typedef struct { int len; char *data; } pending_t;

int main(int argc, char **argv)
{
    static char buf[BUFSZ];
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    alarm(argc > 1 ? (unsigned)atoi(argv[1]) : 300);

    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t slen = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) { perror("listen"); return 1; }
    getsockname(lfd, (struct sockaddr *)&sa, &slen);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[MAXEV];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    pending_t *pend = calloc(rl.rlim_max > 0 && rl.rlim_max < 1048576 ? rl.rlim_max : 65536, sizeof *pend);

    for (;;) {
        int n = epoll_wait(ep, evs, MAXEV, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            pending_t *p = &pend[fd];
            if (p->len == 0) {
                ssize_t r = recv(fd, buf, BUFSZ, 0);
                if (r < 0 && errno == EAGAIN) continue;
                if (r <= 0) { close(fd); continue; }
                ssize_t w = send(fd, buf, r, MSG_NOSIGNAL);
                if (w < 0) w = (errno == EAGAIN) ? 0 : -1;
                if (w < 0) { close(fd); continue; }
                if (w < r) {   /* keep the rest and wait until writable */
                    p->data = malloc(r - w); memcpy(p->data, buf + w, r - w); p->len = r - w;
                    struct epoll_event wev = { .events = EPOLLOUT, .data.fd = fd };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &wev);
                }
            } else if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                ssize_t w = send(fd, p->data, p->len, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) { free(p->data); p->len = 0; close(fd); continue; }
                if (w > 0) { memmove(p->data, p->data + w, p->len - w); p->len -= w; }
                if (p->len == 0) {
                    free(p->data);
                    struct epoll_event rev = { .events = EPOLLIN, .data.fd = fd };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &rev);
                }
            }
        }
    }
}
