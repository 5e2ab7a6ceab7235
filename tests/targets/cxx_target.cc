// C++ target of tests/test_uprobes.py: an overloaded member function in a namespace, attached
// by its mangled and by its demangled name.
#include <cstdio>
#include <unistd.h>

namespace bkns {
struct Klass {
    int base;
    int method(int x);
    int method(double x);
};
__attribute__((noinline)) int Klass::method(int x) { __asm__ volatile(""); return base + x; }
__attribute__((noinline)) int Klass::method(double x) { __asm__ volatile(""); return base + (int)x; }
}  // namespace bkns

volatile long sink;

int main()
{
    char line[64];
    long n;
    bkns::Klass k{7};

    setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("%d\n", getpid());
    while (std::fgets(line, sizeof line, stdin)) {
        if (std::sscanf(line, "int %ld", &n) == 1)
            for (long i = 0; i < n; i++)
                sink += k.method((int)i);
        else if (std::sscanf(line, "dbl %ld", &n) == 1)
            for (long i = 0; i < n; i++)
                sink += k.method((double)i);
        std::printf("ok\n");
    }
    return 0;
}
