/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Is a task inside a cgroup with a given name? The task's own cgroup and its ancestors
 * (up to SCHEDCP_CGROUP_DEPTH levels) are compared by their directory name against a
 * comma-separated list of whole names (see comm.h), e.g. "batch.slice,render". Names
 * longer than 15 bytes are compared on their first 15.
 *
 * Call only from ops that run with the task's run queue locked (enqueue, runnable,
 * running, stopping, enable): scx_bpf_task_cgroup() requires it.
 */
#pragma once

#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/comm.h>

#define SCHEDCP_CGROUP_DEPTH 8

struct cgroup *bpf_cgroup_ancestor(struct cgroup *cgrp, int level) __ksym;

static __always_inline bool schedcp_cgroup_named(struct cgroup *cg,
						 const volatile char *list, u32 size)
{
	char name[SCHEDCP_COMM_LEN] = {};
	const char *kn_name = BPF_CORE_READ(cg, kn, name);

	if (!kn_name)
		return false;
	bpf_probe_read_kernel_str(name, sizeof(name), kn_name);
	return schedcp_name_in_list(name, SCHEDCP_COMM_LEN - 1, list, size);
}

static __always_inline bool schedcp_task_in_cgroup(struct task_struct *p,
						   const volatile char *list, u32 size)
{
	struct cgroup *cg;
	bool hit = false;
	int level;

	if (!list[0])
		return false;
	cg = scx_bpf_task_cgroup(p);
	if (!cg)
		return false;
	level = cg->level;
	/* Level 0 is the root, whose name means nothing here. */
	for (int i = 1; i <= SCHEDCP_CGROUP_DEPTH && i <= level; i++) {
		struct cgroup *anc = bpf_cgroup_ancestor(cg, i);

		if (!anc)
			break;
		hit = schedcp_cgroup_named(anc, list, size);
		bpf_cgroup_release(anc);
		if (hit)
			break;
	}
	bpf_cgroup_release(cg);
	return hit;
}
