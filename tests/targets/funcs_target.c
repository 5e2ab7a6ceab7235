/* Target of tests/test_tools_generic.py (funccount, funclatency, funcslower): makes the calls it
 * is told to on stdin, one command a line, and answers "ok" when they are done, so that a test
 * knows exactly how many calls a tool had to see, and how long each took. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define HAVE_SDT 1
#else
#define HAVE_SDT 0
#endif

volatile long sink;

__attribute__((noipa)) long bpfkit_count_me(long x) { __asm__ volatile(""); return x + 1; }
__attribute__((noipa)) long bpfkit_count_too(long x) { __asm__ volatile(""); return x + 2; }

/* Sleeps `us` microseconds; returns them, so that funcslower's RVAL and ARGS can be checked. */
__attribute__((noipa)) long bpfkit_slow_me(long us)
{
	if (us)
		usleep(us);
	__asm__ volatile("");
	return us;
}

int main(void)
{
	char line[128];
	long a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%d %d\n", getpid(), HAVE_SDT);
	while (fgets(line, sizeof line, stdin)) {
		a = b = 0;
		if (sscanf(line, "count %ld %ld", &a, &b) >= 1) {
			for (long i = 0; i < a; i++)
				sink += bpfkit_count_me(i);
			for (long i = 0; i < b; i++)
				sink += bpfkit_count_too(i);
		} else if (sscanf(line, "slow %ld %ld", &a, &b) == 2) {
			for (long i = 0; i < a; i++)
				sink += bpfkit_slow_me(b);
		} else if (sscanf(line, "getpid %ld", &a) == 1) {
			for (long i = 0; i < a; i++)
				sink += getpid();
		} else if (sscanf(line, "getppid %ld", &a) == 1) {
			for (long i = 0; i < a; i++)
				sink += getppid();
		} else if (sscanf(line, "read %ld", &a) == 1) {
			char c;
			int fd = open("/dev/zero", O_RDONLY);

			for (long i = 0; fd >= 0 && i < a; i++)
				sink += read(fd, &c, 1);
			close(fd);
		} else if (sscanf(line, "open %ld", &a) == 1) {
			for (long i = 0; i < a; i++) {
				int fd = open("/dev/null", O_RDONLY);

				if (fd >= 0)
					close(fd);
			}
		} else if (sscanf(line, "usdt %ld", &a) == 1) {
#if HAVE_SDT
			for (long i = 0; i < a; i++)
				DTRACE_PROBE1(bpfkit, tick, i);
#endif
		}
		printf("ok\n");
	}
	return 0;
}
