//! Links: the attachments libbpf (or bpfkit) makes, detached on drop.

#[allow(unused_imports)]
use super::*;

/// Undoes a `BPF_PROG_ATTACH` of the program at `prog` to `target` that no [`Link`] of this
/// process holds (BCC's `detach_func` of an attachment made elsewhere).
pub fn prog_detach(prog: std::os::fd::BorrowedFd<'_>, target: std::os::fd::BorrowedFd<'_>, attach_type: types::AttachType, what: impl FnOnce() -> String) -> Result<(), Failure> {
    use std::os::fd::AsRawFd;
    // SAFETY: both fds are open for the call.
    let ret = unsafe { lb::bpf_prog_detach2(prog.as_raw_fd(), target.as_raw_fd(), attach_type.raw()) };
    check(ret, what).map(|_| ())
}

/// An attachment. Dropping it detaches the program.
pub struct Link {
    pub(super) inner: LinkInner,
}

pub(super) enum LinkInner {
    /// A libbpf link (BPF link, or a perf event for perf-based attachments).
    Libbpf(NonNull<lb::bpf_link>),
    /// A BPF link fd made with `BPF_LINK_CREATE` (XDP with mode flags): closing it detaches.
    Fd(std::os::fd::OwnedFd),
    /// A filter in a clsact qdisc (kernels without tcx): detached on drop, and the qdisc
    /// removed with the last of this process's filters in it, if this process created it.
    Tc { ifindex: i32, ingress: bool, handle: u32, priority: u32 },
    /// A `BPF_PROG_ATTACH` of `prog` to `target` (no BPF link for the pair on this kernel):
    /// undone with `BPF_PROG_DETACH` on drop. It outlives a killed process, as the kernel keeps it.
    ProgAttach { prog: std::os::fd::OwnedFd, target: std::os::fd::OwnedFd, attach_type: u32 },
}

/// The clsact qdiscs this process's tc filters sit in: ifindex -> (whether this process created
/// the qdisc, how many of its filters are in it). The qdisc goes with the last filter, and only
/// if it was ours, so detaching one direction never takes the other's filter with it.
pub(super) static CLSACT: std::sync::Mutex<Vec<(i32, bool, usize)>> = std::sync::Mutex::new(Vec::new());

pub(super) type ClsactTable = std::sync::MutexGuard<'static, Vec<(i32, bool, usize)>>;

pub(super) fn clsact_table() -> ClsactTable {
    CLSACT.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn clsact_acquire(table: &mut ClsactTable, ifindex: i32, created: bool) {
    match table.iter_mut().find(|e| e.0 == ifindex) {
        Some(e) => e.2 += 1,
        None => table.push((ifindex, created, 1)),
    }
}

/// Drops one filter's hold; true when it was the last and this process created the qdisc.
pub(super) fn clsact_release(table: &mut ClsactTable, ifindex: i32) -> bool {
    let Some(i) = table.iter().position(|e| e.0 == ifindex) else { return false };
    table[i].2 -= 1;
    if table[i].2 > 0 {
        return false;
    }
    table.swap_remove(i).1
}

// SAFETY: a bpf_link is heap data plus an fd, with no thread affinity.
unsafe impl Send for Link {}
// SAFETY: `&Link` only reads the fd.
unsafe impl Sync for Link {}

impl Link {
    /// The link's fd (a perf event fd for perf-based links on old kernels; -1 for a tc filter).
    pub fn fd(&self) -> i32 {
        match &self.inner {
            // SAFETY: the link is live.
            LinkInner::Libbpf(p) => unsafe { lb::bpf_link__fd(p.as_ptr()) },
            LinkInner::Fd(fd) => std::os::fd::AsRawFd::as_raw_fd(fd),
            LinkInner::Tc { .. } | LinkInner::ProgAttach { .. } => -1,
        }
    }
}

pub(super) fn tc_hook(ifindex: i32, ingress: bool) -> lb::bpf_tc_hook {
    lb::bpf_tc_hook {
        sz: std::mem::size_of::<lb::bpf_tc_hook>() as _,
        ifindex,
        attach_point: if ingress { lb::BPF_TC_INGRESS } else { lb::BPF_TC_EGRESS },
        ..Default::default()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        match &self.inner {
            // SAFETY: we own the link; destroying it detaches and frees it exactly once.
            LinkInner::Libbpf(p) => unsafe {
                lb::bpf_link__destroy(p.as_ptr());
            },
            LinkInner::Fd(_) => {} // the OwnedFd closes itself
            LinkInner::ProgAttach { prog, target, attach_type } => {
                use std::os::fd::AsRawFd;
                // SAFETY: both fds are open (owned here). A failure (the target is gone) leaves
                // nothing attached.
                unsafe { lb::bpf_prog_detach2(prog.as_raw_fd(), target.as_raw_fd(), *attach_type) };
            }
            &LinkInner::Tc { ifindex, ingress, handle, priority } => {
                let hook = tc_hook(ifindex, ingress);
                let opts = lb::bpf_tc_opts {
                    sz: std::mem::size_of::<lb::bpf_tc_opts>() as _,
                    handle,
                    priority,
                    ..Default::default()
                };
                // SAFETY: hook and opts are valid for the calls. Failures (the device is gone)
                // leave nothing to clean up.
                // The table stays locked until the qdisc is gone, so no filter of this
                // process can be attached to a qdisc about to be destroyed.
                let mut table = clsact_table();
                unsafe {
                    lb::bpf_tc_detach(&hook, &opts);
                    if clsact_release(&mut table, ifindex) {
                        let mut both = hook;
                        both.attach_point = lb::BPF_TC_INGRESS | lb::BPF_TC_EGRESS;
                        lb::bpf_tc_hook_destroy(&mut both);
                    }
                }
            }
        }
    }
}
