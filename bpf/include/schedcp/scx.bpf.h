/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp's own sched_ext declarations for BPF schedulers.
 *
 * Written for this project against the kernel's BTF (vmlinux.h generated from the lab
 * kernel): the kfuncs every policy may call, the ops-definition macros, and the exit
 * record that the loader reads back when the kernel ejects a scheduler. Only the names
 * present in both 6.16 and 7.x kernels are declared (scx_bpf_dsq_insert,
 * scx_bpf_dsq_move_to_local, ...), so one object loads on either.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NSEC_PER_USEC 1000ULL
#define NSEC_PER_MSEC 1000000ULL

/* --- kfuncs: the verifier checks each call against the kernel's own prototype --- */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
s32 scx_bpf_pick_any_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask(void) __ksym;
void scx_bpf_put_idle_cpumask(const struct cpumask *cpumask) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
bool scx_bpf_task_running(const struct task_struct *p) __ksym;
struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data,
		       u32 data__sz) __ksym;

void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;

/*
 * scx_bpf_error("fmt", args...): eject the scheduler with a formatted reason. The
 * arguments travel as an array of u64, as the _bstr kfunc expects.
 */
#define scx_bpf_error(fmt, args...)						\
({										\
	static char ___fmt[] = fmt;						\
	unsigned long long ___param[___bpf_narg(args)];				\
										\
	_Pragma("GCC diagnostic push")						\
	_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")			\
	___bpf_fill(___param, args);						\
	_Pragma("GCC diagnostic pop")						\
	scx_bpf_error_bstr(___fmt, ___param, sizeof(___param));			\
})

/* --- defining ops --- */
#define BPF_STRUCT_OPS(name, args...) \
	SEC("struct_ops/" #name) BPF_PROG(name, ##args)
/* Sleepable ops (ops.init) may create DSQs. */
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) \
	SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/*
 * The exit record. ops.exit copies the kernel's exit info here; the loader reads it from
 * the object's .bss after the scheduler stops, so a stall, a scx_bpf_error() or an
 * unregistration is reported with its kind and reason, not guessed from dmesg.
 */
struct schedcp_exit_info {
	s32 kind;
	s64 exit_code;
	char reason[128];
	char msg[256];
};

#define SCHEDCP_EXIT_INFO struct schedcp_exit_info schedcp_exit

static __always_inline void schedcp_record_exit(struct schedcp_exit_info *dst,
						struct scx_exit_info *ei)
{
	bpf_probe_read_kernel_str(dst->reason, sizeof(dst->reason), ei->reason);
	bpf_probe_read_kernel_str(dst->msg, sizeof(dst->msg), ei->msg);
	dst->exit_code = ei->exit_code;
	/* kind last: the loader treats a non-zero kind as "the record is complete" */
	dst->kind = ei->kind;
}

/* Defines schedcp_exit and an ops.exit named <prefix>_exit that fills it. */
#define SCHEDCP_DEFINE_EXIT(prefix)						\
	SCHEDCP_EXIT_INFO;							\
	void BPF_STRUCT_OPS(prefix##_exit, struct scx_exit_info *ei)		\
	{									\
		schedcp_record_exit(&schedcp_exit, ei);				\
	}

/* Lower is earlier, with u64 wrap-around handled. */
static __always_inline bool time_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}
