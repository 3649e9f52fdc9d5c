//! What /proc says about a process tree: parents, descendants, resident
//! memory. Linux only; elsewhere every answer is empty.

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The parent of `pid`, from /proc/PID/stat.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields after
    // the last `)` are state, then the parent.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Every live process, with its parent.
fn processes() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// Pids whose parent is `parent`: from the `children` file of each of its
/// threads (a child is listed under the thread that started it), which
/// costs a few reads per thread; a walk of all of /proc only where the
/// kernel has no such files (built without `CONFIG_PROC_CHILDREN`).
pub fn children_of(parent: u32) -> Vec<u32> {
    match listed_children(parent) {
        Some(children) => children,
        None => processes()
            .into_iter()
            .filter(|(_, of)| *of == parent)
            .map(|(pid, _)| pid)
            .collect(),
    }
}

/// Whether this kernel lists children in /proc/PID/task/TID/children
/// (`CONFIG_PROC_CHILDREN`); found out once.
pub fn lists_children() -> bool {
    static LISTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTS.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

/// `parent`'s children from /proc/PID/task/TID/children, or `None` when
/// the kernel does not offer them. A `parent` that is gone has none.
fn listed_children(parent: u32) -> Option<Vec<u32>> {
    if !lists_children() {
        return None;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Some(Vec::new());
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let mut path = task.path();
        path.push("children");
        // A thread that exited meanwhile has nothing to read.
        if let Ok(text) = std::fs::read_to_string(&path) {
            children.extend(text.split_whitespace().filter_map(|pid| pid.parse::<u32>().ok()));
        }
    }
    Some(children)
}

/// `root` and every process below it.
pub fn tree(root: u32) -> Vec<u32> {
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        for child in children_of(tree[index]) {
            if !tree.contains(&child) {
                tree.push(child);
            }
        }
        index += 1;
    }
    tree
}

/// The resident memory of `root` and everything below it, in KiB; `None`
/// when `root` is gone (or this is not Linux).
pub fn tree_rss_kb(root: u32) -> Option<u64> {
    status_kib(root, "VmRSS")?;
    Some(tree(root).into_iter().filter_map(|pid| status_kib(pid, "VmRSS")).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_child_is_in_its_parents_tree_and_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let me = std::process::id();
        assert_eq!(parent_of(child.id()), Some(me));
        assert!(children_of(me).contains(&child.id()));
        assert!(tree(me).contains(&child.id()));
        // The children files and the walk of /proc agree.
        let walked: Vec<u32> = processes()
            .into_iter()
            .filter(|(_, of)| *of == me)
            .map(|(pid, _)| pid)
            .collect();
        assert!(walked.contains(&child.id()));
        if let Some(listed) = listed_children(me) {
            assert!(listed.contains(&child.id()), "{listed:?}");
        }
        let own = status_kib(me, "VmRSS").expect("own RSS");
        let whole = tree_rss_kb(me).expect("tree RSS");
        assert!(whole > own, "the child's memory is counted: {whole} vs {own}");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tree_rss_kb(child.id()), None, "a reaped process has no tree");
    }
}
