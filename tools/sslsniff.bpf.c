// SPDX-License-Identifier: GPL-2.0
/*
 * sslsniff: the plaintext of TLS reads and writes, from uprobes and uretprobes on the TLS
 * libraries' read and write functions (OpenSSL's SSL_read/SSL_write and their _ex forms,
 * GnuTLS's gnutls_record_recv/send, NSS's PR_Read/PR_Write/PR_Recv/PR_Send), which sslsniff.py
 * attaches; with -l --handshake, SSL_do_handshake's latency too.
 * Compiled after tool.bpf.h (tool_traced(): -p -u; TOOL_EVENTS, tool_scratch()/tool_output()).
 */

#define TASK_COMM_LEN 16
#define MAX_BUF 8192 /* BCC's buffer: --max-buffer-size can only shorten what is shown */

enum { RW_READ, RW_WRITE, RW_HANDSHAKE };

struct call {
	u64 ts_ns;
	const void *buf;
	size_t *count; /* the _ex forms: where the library writes the byte count */
};

struct ssl_event {
	u64 ts_ns;
	u64 delta_ns;
	u32 pid;
	u32 tid;
	u32 uid;
	s32 len;
	u32 rw;
	u32 buf_filled;
	char comm[TASK_COMM_LEN];
	char buf[MAX_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} handshakes SEC(".maps");

/* 1 MiB: records are sent as long as their data (tool_output()), and a full one (8 KiB) fits 124
 * times, where BCC's sslsniff holds 4 per CPU (perf buffers of 8 pages); 4 MiB cost 1-2 ms of
 * start-up and 6 MiB of RSS (the ring is mapped twice, and counted in full at once). */
TOOL_EVENTS(1 << 20);

static __always_inline int enter(const void *buf, size_t *count)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct call c = { .ts_ns = bpf_ktime_get_ns(), .buf = buf, .count = count };

	if (tool_traced())
		bpf_map_update_elem(&calls, &tid, &c, BPF_ANY);
	return 0;
}

static __always_inline int emit(void *ctx, u32 rw, s64 len, u64 ts_start, const void *buf)
{
	u64 id = bpf_get_current_pid_tgid();
	struct ssl_event *e = tool_scratch(struct ssl_event);
	u32 n = 0;

	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->delta_ns = e->ts_ns - ts_start;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->len = len;
	e->rw = rw;
	e->buf_filled = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (buf && len > 0) {
		n = len < MAX_BUF ? (u32)len : MAX_BUF;
		if (bpf_probe_read_user(e->buf, n, buf) == 0)
			e->buf_filled = 1;
		else
			n = 0;
	}
	/* Only as much of the buffer as was copied: most records are short. */
	if (n > MAX_BUF)
		n = MAX_BUF;
	tool_output(ctx, e, offsetof(struct ssl_event, buf) + n);
	return 0;
}

static __always_inline int leave(void *ctx, u32 rw, long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &tid);
	s64 len = ret;

	if (!c)
		return 0;
	if (c->count) {
		/* SSL_read_ex/SSL_write_ex: 1 on success, the count written through the pointer. */
		size_t got = 0;

		if (ret == 1)
			bpf_probe_read_user(&got, sizeof(got), c->count);
		len = ret == 1 ? (s64)got : -1;
	}
	if (len > 0)
		emit(ctx, rw, len, c->ts_ns, c->buf);
	bpf_map_delete_elem(&calls, &tid);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(rw_enter, void *ssl, const void *buf) { return enter(buf, 0); }

SEC("uprobe")
int BPF_UPROBE(rw_ex_enter, void *ssl, const void *buf, size_t num, size_t *count) { return enter(buf, count); }

SEC("uretprobe")
int BPF_URETPROBE(read_exit, long ret) { return leave(ctx, RW_READ, ret); }

SEC("uretprobe")
int BPF_URETPROBE(write_exit, long ret) { return leave(ctx, RW_WRITE, ret); }

SEC("uprobe")
int BPF_UPROBE(handshake_enter)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();

	if (tool_traced())
		bpf_map_update_elem(&handshakes, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(handshake_exit, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *ts = bpf_map_lookup_elem(&handshakes, &tid);

	if (!ts)
		return 0;
	/* SSL_do_handshake returns 1 when the handshake is done; 0 or less: not (yet) done. */
	if (ret == 1)
		emit(ctx, RW_HANDSHAKE, 0, *ts, 0);
	bpf_map_delete_elem(&handshakes, &tid);
	return 0;
}
