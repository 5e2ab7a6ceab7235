//! Shared memory of `BPF_F_MMAPABLE` arrays (kernel 5.5).

#[allow(unused_imports)]
use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared mapping of a `BPF_F_MMAPABLE` array: user space and the program see the same memory.
///
/// Views handed to Python (numpy arrays) may outlive the object. Closing the object therefore
/// does not unmap the region (a view would then fault): [`MmapRegion::detach`] replaces the pages
/// in place with private zero pages, which drops the kernel map's last reference while every view
/// stays valid memory. The address range is unmapped when the last owner drops.
pub struct MmapRegion {
    addr: usize,
    len: usize,
    detached: AtomicBool,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096).max(4096)
}

impl MmapRegion {
    /// Maps all values of the mmapable array `fd` (`max_entries` values of `value_size` bytes,
    /// each rounded up to 8), read-write and shared.
    pub fn of_array(fd: std::os::fd::BorrowedFd<'_>, value_size: u32, max_entries: u32) -> Result<MmapRegion, Failure> {
        use std::os::fd::AsRawFd;
        let stride = (value_size as usize).div_ceil(8) * 8;
        let len = stride
            .checked_mul(max_entries as usize)
            .map(|n| n.div_ceil(page_size()) * page_size())
            .ok_or_else(|| Failure { errno: libc::E2BIG, context: "mapping the array into memory: too large".into() })?;
        // SAFETY: a fresh shared mapping of the map's fd at an address the kernel picks; the
        // kernel checks the length against the map and the fd's type.
        let p = unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(Failure { errno: last_errno(), context: "mapping the array into memory".into() });
        }
        Ok(MmapRegion { addr: p as usize, len, detached: AtomicBool::new(false) })
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the map behind it has been released (the region now reads zeros).
    pub fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    /// Lets go of the map: the range now holds private zero pages. Idempotent.
    pub fn detach(&self) {
        if self.detached.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: replaces exactly our own mapping, in place (MAP_FIXED over the range we own),
        // with anonymous zero pages, so the memory stays valid for any view of it.
        unsafe {
            libc::mmap(
                self.addr as *mut c_void,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }
}

impl Drop for MmapRegion {
    fn drop(&mut self) {
        // SAFETY: we own the range [addr, addr+len) and unmap it once.
        unsafe { libc::munmap(self.addr as *mut c_void, self.len) };
    }
}
