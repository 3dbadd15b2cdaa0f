// SPDX-License-Identifier: GPL-2.0
/*
 * schedcp-probe: load the run-queue latency probe, let it watch for a while, print JSON.
 *
 *   schedcp-probe OBJ SECONDS [TGID]
 *
 * Output on stdout, one line: {"seconds":S,"hist_us_log2":[...],"comms":[{"comm":"..",
 * "runtime_ns":N,"wait_ns":N,"max_wait_ns":N,"runs":N},...]}. Errors go to stderr with
 * libbpf's message (and the verifier log), exit 2; bad arguments exit 1. Everything is
 * detached when the program exits, whatever the reason.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct comm_stat {
	unsigned long long runtime_ns, wait_ns, max_wait_ns, runs;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void put_json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int set_target(struct bpf_object *obj, unsigned int tgid)
{
	struct bpf_map *map;
	size_t size = 0;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		size_t len = strlen(name);
		if (len < 7 || strcmp(name + len - 7, ".rodata"))
			continue;
		unsigned int *data = bpf_map__initial_value(map, &size);
		if (!data || size < sizeof(*data))
			return -1;
		data[0] = tgid; /* target_tgid is the object's only read-only global */
		return 0;
	}
	return -1;
}

static void print_result(struct bpf_object *obj, double seconds)
{
	int hist = bpf_object__find_map_fd_by_name(obj, "hist");
	int comms = bpf_object__find_map_fd_by_name(obj, "comms");
	char key[16], next[16];
	struct comm_stat st;
	int first = 1;

	printf("{\"seconds\":%.3f,\"hist_us_log2\":[", seconds);
	for (unsigned int b = 0; b < 27; b++) {
		unsigned long long v = 0;
		bpf_map_lookup_elem(hist, &b, &v);
		printf("%s%llu", b ? "," : "", v);
	}
	printf("],\"comms\":[");
	void *prev = NULL;
	while (bpf_map_get_next_key(comms, prev, next) == 0) {
		if (bpf_map_lookup_elem(comms, next, &st) == 0) {
			printf("%s{\"comm\":", first ? "" : ",");
			put_json_str(next, sizeof(next));
			printf(",\"runtime_ns\":%llu,\"wait_ns\":%llu,\"max_wait_ns\":%llu,"
			       "\"runs\":%llu}", st.runtime_ns, st.wait_ns, st.max_wait_ns, st.runs);
			first = 0;
		}
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	printf("]}\n");
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct timespec t0, t1;
	double limit, seconds;
	unsigned int tgid = 0;

	if (argc < 3 || argc > 4 || (limit = atof(argv[2])) <= 0 || limit > 60) {
		fprintf(stderr, "usage: %s OBJ SECONDS(0-60] [TGID]\n", argv[0]);
		return 1;
	}
	if (argc == 4)
		tgid = (unsigned int)strtoul(argv[3], NULL, 10);
	libbpf_set_print(print_fn);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (set_target(obj, tgid) || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		bpf_object__close(obj);
		return 2;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "cannot attach %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			bpf_object__close(obj);
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(20000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	} while (!stop && seconds < limit);
	print_result(obj, seconds);
	bpf_object__close(obj);
	return 0;
}
