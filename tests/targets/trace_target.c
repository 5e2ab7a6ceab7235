/* Target of tests/test_tools_trace.py (trace, argdist, stackcount): makes the calls it is told
 * to on stdin, one command a line, and answers "ok" when they are done. It reads its commands a
 * byte at a time (read(0, &c, 1)), so that its own reads of stdin are all of 1 byte and never
 * land in the buckets of the reads a test asks for. Built with frame pointers, so that its user
 * stacks unwind: bpfkit_leaf() is called by bpfkit_caller_one() and bpfkit_caller_two(), each
 * through bpfkit_via() (which a uprobe at bpfkit_leaf's entry may not see, on kernels that
 * miss the frame being built there: the callers stay distinct either way). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long bpfkit_trace_me(long v)
{
	__asm__ volatile("");
	return v + 100;
}

__attribute__((noinline)) long bpfkit_leaf(long v)
{
	__asm__ volatile("");
	return v * 3;
}

__attribute__((noinline)) long bpfkit_via(long v)
{
	long r = bpfkit_leaf(v);

	__asm__ volatile("");
	return r + 1;
}

__attribute__((noinline)) void bpfkit_caller_one(long n)
{
	for (long i = 0; i < n; i++)
		sink += bpfkit_via(i);
}

__attribute__((noinline)) void bpfkit_caller_two(long n)
{
	for (long i = 0; i < n; i++)
		sink += bpfkit_via(i);
}

static int read_line(char *buf, size_t size)
{
	size_t n = 0;
	char c;

	while (read(0, &c, 1) == 1) {
		if (c == '\n') {
			buf[n] = 0;
			return 1;
		}
		if (n + 1 < size)
			buf[n++] = c;
	}
	return 0;
}

int main(void)
{
	static char buf[65536];
	char line[4096];
	long a, b;

	printf("%d\n", getpid());
	fflush(stdout);
	while (read_line(line, sizeof line)) {
		if (!strncmp(line, "values ", 7)) {
			/* values V1 V2 ...: bpfkit_trace_me(V) for each, in order */
			char *p = line + 7, *end;

			for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
				sink += bpfkit_trace_me(v);
				p = end;
			}
		} else if (sscanf(line, "callers %ld %ld", &a, &b) == 2) {
			bpfkit_caller_one(a);
			bpfkit_caller_two(b);
		} else if (sscanf(line, "read %ld %ld", &a, &b) == 2 && b <= (long)sizeof buf) {
			/* read N SIZE: N reads of SIZE bytes from /dev/zero */
			int fd = open("/dev/zero", O_RDONLY);

			for (long i = 0; fd >= 0 && i < a; i++)
				sink += read(fd, buf, b);
			close(fd);
		} else if (!strncmp(line, "open ", 5)) {
			/* open PATH: open(PATH) (an openat system call), then close it */
			int fd = open(line + 5, O_RDONLY);

			if (fd >= 0)
				close(fd);
		}
		printf("ok\n");
		fflush(stdout);
	}
	return 0;
}
