/* The floor a generator on epoll can reach: keep-alive GETs on N connections with nothing but
 * one write and one read per response (plus epoll_wait), no parsing beyond counting the
 * bytes of a response whose size is given on the command line, no timing, no histogram.
 * Not a tool: a reference for bench/compare.sh, to show what the kernel's share of a request
 * is on this machine and how close errand bench and wrk come to it.
 *
 *   epoll_floor HOST PORT CONNECTIONS SECONDS RESPONSE_BYTES
 *
 * Prints "<responses> requests" (the count compare.sh parses). Any surprise (a read that
 * overruns the expected size, a closed connection) stops it with exit 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SECONDS RESPONSE_BYTES\n", argv[0]);
    return 2;
  }
  int connections = atoi(argv[3]);
  double seconds = atof(argv[4]);
  long expect = atol(argv[5]);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || connections <= 0 || expect <= 0) return 2;
  char request[256];
  int request_len = snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: %s:%s\r\n\r\n", argv[1], argv[2]);

  int ep = epoll_create1(0);
  long* got = calloc((size_t)connections, sizeof(long));
  for (int i = 0; i < connections; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);  /* blocking connect, then non-blocking I/O */
    if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
      perror("connect");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((unsigned long)i << 32) | (unsigned)fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    if (write(fd, request, (size_t)request_len) != request_len) return 1;
  }
  long responses = 0;
  char buffer[16384];
  struct epoll_event events[256];
  double end = now() + seconds;
  while (now() < end) {
    int n = epoll_wait(ep, events, 256, 100);
    for (int k = 0; k < n; ++k) {
      int i = (int)(events[k].data.u64 >> 32), fd = (int)(events[k].data.u64 & 0xffffffffu);
      ssize_t r = read(fd, buffer, sizeof buffer);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "connection %d ended (%zd)\n", i, r);
        return 1;
      }
      got[i] += r;
      if (got[i] > expect) {
        fprintf(stderr, "response larger than %ld bytes: pass the right RESPONSE_BYTES\n", expect);
        return 1;
      }
      if (got[i] == expect) {
        got[i] = 0;
        ++responses;
        if (write(fd, request, (size_t)request_len) != request_len) return 1;
      }
    }
  }
  printf("%ld requests\n", responses);
  return 0;
}
