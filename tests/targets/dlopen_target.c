/* Target of tests/test_uprobes.py: dlopen()s the library named by argv[1] (a path outside the
 * linker's cache) and calls its bk_dl_fn as often as told on stdin. */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

volatile long sink;

int main(int argc, char **argv)
{
    char line[64];
    long n;

    if (argc < 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    int (*fn)(int) = h ? (int (*)(int))dlsym(h, "bk_dl_fn") : NULL;
    if (!fn) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%d\n", getpid());
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "call %ld", &n) == 1)
            for (long i = 0; i < n; i++)
                sink += fn((int)i);
        printf("ok\n");
    }
    return 0;
}
