/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Matching a task's command name (comm) against a configured, comma-separated list,
 * e.g. a `str` tunable "longjob,ffmpeg,cc1". Names match whole; an empty list matches
 * nothing. The list is usually a `const volatile char name[N]` tunable.
 */
#pragma once

#include <schedcp/scx.bpf.h>

#define SCHEDCP_COMM_LEN 16

/* The task's comm, copied to the stack so it can be indexed by a variable. */
static __always_inline void schedcp_task_comm(struct task_struct *p, char comm[SCHEDCP_COMM_LEN])
{
	bpf_probe_read_kernel_str(comm, SCHEDCP_COMM_LEN, p->comm);
}

/* Is `comm` one of the names in `list` (size bytes, NUL-terminated, comma-separated)? */
static __always_inline bool schedcp_name_in_list(const char *comm, u32 comm_len,
						 const volatile char *list, u32 size)
{
	u32 j = 0;
	bool same = true;

	for (u32 i = 0; i < size; i++) {
		char c = list[i];

		if (c == ',' || c == '\0') {
			/* A whole name matched: the comm ends here too. */
			if (same && j > 0 && (j >= comm_len || comm[j & (SCHEDCP_COMM_LEN - 1)] == '\0'))
				return true;
			if (c == '\0')
				return false;
			j = 0;
			same = true;
			continue;
		}
		if (!same)
			continue;
		if (j >= comm_len || comm[j & (SCHEDCP_COMM_LEN - 1)] != c)
			same = false;
		else
			j++;
	}
	return false;
}

static __always_inline bool schedcp_comm_in_list(struct task_struct *p,
						 const volatile char *list, u32 size)
{
	char comm[SCHEDCP_COMM_LEN] = {};

	if (!list[0])
		return false;
	schedcp_task_comm(p, comm);
	return schedcp_name_in_list(comm, SCHEDCP_COMM_LEN - 1, list, size);
}
