/*
 * The benchmarks' event source: waits for a line on stdin, then calls getppid() N times, at
 * RATE calls per second (busy-waiting between calls), or as fast as it can when RATE is 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	double rate = argc > 2 ? atof(argv[2]) : 0;
	char line[16];

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (rate > 0)
			while (now() - t0 < i / rate)
				;
		syscall(SYS_getppid);
	}
	printf("%.0f\n", n / (now() - t0));
	return 0;
}
