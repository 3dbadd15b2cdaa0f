// SPDX-License-Identifier: GPL-2.0
/*
 * schedcp-loader: load one sched_ext scheduler object, set its tunables, attach it, and
 * report how it ended.
 *
 *   schedcp-loader OBJ [NAME=VALUE ...]
 *
 * Tunables are the object's `const volatile` globals: each NAME=VALUE is written into the
 * .rodata image before load, found by name through the object's BTF, so any scheduler
 * built against our headers can be configured without a generated skeleton.
 *
 * Protocol on stdout, one line each, so a supervisor can follow it:
 *   ATTACHED <ops name>
 *   EXIT {"kind":N,"exit_code":N,"reason":"...","msg":"..."}   (when it stopped)
 * The scheduler stays attached until SIGTERM/SIGINT (then it is detached) or until the
 * kernel ejects it (a stall, scx_bpf_error). Load failures print libbpf's message and the
 * kernel verifier log on stderr and exit 2; bad arguments exit 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* Matches struct schedcp_exit_info in bpf/include/schedcp/scx.bpf.h. */
struct exit_info {
	int kind;
	long long exit_code;
	char reason[128];
	char msg[256];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* libbpf's messages (including the verifier log on a failed load) go to stderr. */
static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Find a global by name in a DATASEC of the object's BTF: its offset and size. */
static int find_var(const struct btf *btf, const char *sec, const char *name,
		    __u32 *off, __u32 *size)
{
	int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	const struct btf_type *t;
	const struct btf_var_secinfo *vs;

	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *v = btf__type_by_id(btf, vs->type);

		if (!strcmp(btf__name_by_offset(btf, v->name_off), name)) {
			*off = vs->offset;
			*size = vs->size;
			return 0;
		}
	}
	return -ENOENT;
}

static struct bpf_map *find_map_by_suffix(struct bpf_object *obj, const char *suffix)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *n = bpf_map__name(m);
		size_t ln = strlen(n), ls = strlen(suffix);

		if (ln >= ls && !strcmp(n + ln - ls, suffix))
			return m;
	}
	return NULL;
}

/* Write NAME=VALUE into the .rodata image; strings are NUL-padded to the variable size. */
static int set_tunable(struct bpf_object *obj, const char *arg)
{
	const struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *ro = find_map_by_suffix(obj, ".rodata");
	char name[128];
	const char *eq = strchr(arg, '=');
	__u32 off, size;
	size_t sz;
	char *data;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name)) {
		fprintf(stderr, "bad tunable '%s': expected NAME=VALUE\n", arg);
		return -EINVAL;
	}
	memcpy(name, arg, eq - arg);
	name[eq - arg] = '\0';
	if (!ro || !btf || find_var(btf, ".rodata", name, &off, &size)) {
		fprintf(stderr, "unknown tunable '%s': no const volatile global of that name\n", name);
		return -ENOENT;
	}
	data = bpf_map__initial_value(ro, &sz);
	if (!data || off + size > sz)
		return -EINVAL;
	if (eq[1] == '"') {
		size_t n = strlen(eq + 2);

		if (n == 0 || eq[2 + n - 1] != '"' || n - 1 >= size) {
			fprintf(stderr, "tunable %s: string too long (max %u bytes)\n", name, size - 1);
			return -E2BIG;
		}
		memset(data + off, 0, size);
		memcpy(data + off, eq + 2, n - 1);
		return 0;
	}
	{
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (eq[1] == '-')
			v = (unsigned long long)strtoll(eq + 1, &end, 0);
		if (errno || *end || end == eq + 1) {
			fprintf(stderr, "tunable %s: '%s' is not an integer\n", name, eq + 1);
			return -EINVAL;
		}
		/* x86 is little-endian: the low bytes are the value for any width. */
		memcpy(data + off, &v, size < sizeof(v) ? size : sizeof(v));
	}
	return 0;
}

/* Read the exit record from .bss; kind == 0 means the scheduler has not exited. */
static bool read_exit(struct bpf_object *obj, struct exit_info *ei)
{
	struct bpf_map *bss = find_map_by_suffix(obj, ".bss");
	const struct btf *btf = bpf_object__btf(obj);
	__u32 off, size, key = 0;
	static char buf[1 << 16];

	if (!bss || !btf || find_var(btf, ".bss", "schedcp_exit", &off, &size))
		return false;
	if (bpf_map__value_size(bss) > sizeof(buf) || size < sizeof(*ei))
		return false;
	if (bpf_map_lookup_elem(bpf_map__fd(bss), &key, buf))
		return false;
	memcpy(ei, buf + off, sizeof(*ei));
	return ei->kind != 0;
}

static void json_str(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_exit(const struct exit_info *ei)
{
	printf("EXIT {\"kind\":%d,\"exit_code\":%lld,\"reason\":", ei->kind, ei->exit_code);
	json_str(ei->reason, sizeof(ei->reason));
	printf(",\"msg\":");
	json_str(ei->msg, sizeof(ei->msg));
	printf("}\n");
	fflush(stdout);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_map *ops = NULL, *m;
	struct bpf_link *link;
	struct exit_info ei = {};
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJ [NAME=VALUE ...]\n", argv[0]);
		return 1;
	}
	libbpf_set_print(print_fn);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (int i = 2; i < argc; i++)
		if (set_tunable(obj, argv[i]))
			return 1;
	bpf_object__for_each_map(m, obj)
		if (bpf_map__type(m) == BPF_MAP_TYPE_STRUCT_OPS)
			ops = m;
	if (!ops) {
		fprintf(stderr, "%s has no struct_ops map: not a sched_ext scheduler\n", argv[1]);
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load failed: %s\n", strerror(-err));
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	link = bpf_map__attach_struct_ops(ops);
	if (!link) {
		fprintf(stderr, "attach failed: %s\n", strerror(errno));
		return 2;
	}
	printf("ATTACHED %s\n", bpf_map__name(ops));
	fflush(stdout);

	/* Poll for an ejection; the kernel fills the record from ops.exit. */
	while (!stop && !read_exit(obj, &ei))
		sleep_ms(50);
	if (!ei.kind) {
		bpf_link__destroy(link);
		link = NULL;
		/* Unregistering runs ops.exit from a kernel worker: give it a moment. */
		for (int i = 0; i < 40 && !read_exit(obj, &ei); i++)
			sleep_ms(25);
	}
	if (ei.kind)
		print_exit(&ei);
	if (link)
		bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
