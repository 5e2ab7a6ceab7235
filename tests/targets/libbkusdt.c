/* libbkusdt.so for tests/test_usdt.py: a USDT probe in a shared library. */
#include <sys/sdt.h>

void bk_lib_usdt(long n)
{
    for (long i = 0; i < n; i++)
        DTRACE_PROBE1(bklib, libtick, i + 100);
}
