/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * linux/errno.h for BPF programs compiled by bpfkit: the kernel's error numbers, so headers that
 * include it (libbpf's usdt.bpf.h does) never reach for the host's <asm/errno.h>, which a
 * -target bpf compile cannot find. The values are the kernel's (asm-generic/errno-base.h).
 */
#ifndef __BPFKIT_LINUX_ERRNO_H
#define __BPFKIT_LINUX_ERRNO_H

#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EXDEV 18
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOTTY 25
#define EFBIG 27
#define ENOSPC 28
#define ESPIPE 29
#define EROFS 30
#define EMLINK 31
#define EPIPE 32
#define EDOM 33
#define ERANGE 34
#define ENOSYS 38
#define EOPNOTSUPP 95
#define ENOTSUPP 524

#endif /* __BPFKIT_LINUX_ERRNO_H */
