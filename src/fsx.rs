//! Safe file I/O for every command that writes files (`render --out`, `gitops`, `templates
//! eject`, `infra` work dirs, `infra kubeconfig --write`, `man --out`) and for bounded reads of
//! input files.
//!
//! The rules, in one place so that no writer has its own copy:
//! - Below the output folder, no path component may be a symbolic link: mldeploy never creates
//!   links, so a link is someone else's and is neither written through nor deleted.
//! - Only regular files are read, replaced or deleted. A FIFO, socket or device where a file is
//!   expected is an error, and it is never opened (opening a FIFO for reading waits forever).
//! - Files are written to a temporary file created exclusively (`O_CREAT|O_EXCL`, which does not
//!   follow links) in the same folder, then renamed over the target: a reader, or a crash, never
//!   sees half a file, and the rename replaces the directory entry, never a link's target.
//! - Whether an existing file may be replaced is the caller's proof of ownership ([`HEADER`] or a
//!   manifest hash); [`sync_folder`] implements the header rule for whole folders.
//! - Generated names are plain relative paths ([`is_plain_relative`]).

use std::collections::BTreeMap;
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::bundle::HEADER;

/// Largest existing file read back to compare with what would be written. Generated files are
/// kilobytes; anything larger is not one of them.
pub const MAX_GENERATED_BYTES: usize = 64 * 1024 * 1024;

/// Why a file could not be read or written safely.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A path component is a symbolic link.
    #[error("{} is a symbolic link; mldeploy does not write through or delete links", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something other than what is needed: a FIFO where a file is written, a file where a
    /// folder is needed.
    #[error("{} is a {found}, not a {wanted}", path.display())]
    Kind {
        /// The path.
        path: PathBuf,
        /// What is there.
        found: &'static str,
        /// What was needed.
        wanted: &'static str,
    },
    /// A file at a path mldeploy writes, which mldeploy did not write.
    #[error("{} exists and was not written by mldeploy (it has no `{HEADER}` header)", path.display())]
    NotOurs {
        /// The file.
        path: PathBuf,
    },
    /// A generated name that is not a plain relative path.
    #[error("a generated file name is not a plain relative path: `{name}`")]
    UnsafeName {
        /// The name.
        name: String,
    },
    /// An input larger than its limit.
    #[error("{} is larger than {} MiB", path.display(), limit / 1024 / 1024)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: usize,
    },
    /// The operating system refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            FileError::Symlink { path } => Some(format!(
                "replace the link with a real folder or file, or write elsewhere{}",
                std::fs::read_link(path)
                    .map(|t| format!(" (it points to {})", t.display()))
                    .unwrap_or_default()
            )),
            FileError::Kind { .. } => Some("remove it, or write elsewhere".into()),
            FileError::NotOurs { .. } => Some(
                "mldeploy overwrites only files it wrote: move the file away (or delete it) if \
                 mldeploy may replace it, or write elsewhere"
                    .into(),
            ),
            FileError::UnsafeName { .. } => {
                Some("a template renders a kind or metadata.name with `/` or `..`; fix it".into())
            }
            FileError::TooLarge { .. } => Some("is this the right file?".into()),
            FileError::Io { .. } => None,
        }
    }
}

/// What a file type is called in messages.
fn kind_name(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "folder"
    } else if t.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// A relative path of plain components: no root, no `.`/`..`, no empty segment, no `\`, no
/// control character.
/// Paths read from a manifest or rendered from templates are checked with this before anything
/// is written or deleted, so they cannot name anything outside the folder.
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        // Control characters (ESC, CR, …) would reach the terminal in every listing.
        && !path.chars().any(char::is_control)
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && Path::new(seg)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
        })
}

fn check_name(rel: &str) -> Result<(), FileError> {
    if is_plain_relative(rel) {
        Ok(())
    } else {
        Err(FileError::UnsafeName { name: rel.into() })
    }
}

/// `lstat`, with a missing path as `None`.
fn lstat(path: &Path) -> Result<Option<Metadata>, FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FileError::io(path, e)),
    }
}

/// Checks the folders between `root` and `rel`'s file: each is a real folder or missing.
/// Returns false when one is missing (so the file is missing too).
fn parents_exist(root: &Path, rel: &str) -> Result<bool, FileError> {
    let mut path = root.to_path_buf();
    let segs: Vec<&str> = rel.split('/').collect();
    for seg in &segs[..segs.len() - 1] {
        path.push(seg);
        match lstat(&path)? {
            None => return Ok(false),
            Some(m) if m.file_type().is_symlink() => return Err(FileError::Symlink { path }),
            Some(m) if !m.is_dir() => {
                return Err(FileError::Kind {
                    path,
                    found: kind_name(m.file_type()),
                    wanted: "folder",
                });
            }
            Some(_) => {}
        }
    }
    Ok(true)
}

/// What is at `root/rel`, without following a link: `None` if nothing. A link anywhere below
/// `root` is an error; so is anything but a regular file at the end.
pub fn existing_file(root: &Path, rel: &str) -> Result<Option<Metadata>, FileError> {
    check_name(rel)?;
    if !parents_exist(root, rel)? {
        return Ok(None);
    }
    let path = root.join(rel);
    match lstat(&path)? {
        None => Ok(None),
        Some(m) if m.file_type().is_symlink() => Err(FileError::Symlink { path }),
        Some(m) if !m.is_file() => Err(FileError::Kind {
            path,
            found: kind_name(m.file_type()),
            wanted: "regular file",
        }),
        Some(m) => Ok(Some(m)),
    }
}

/// Opens a regular file that `lstat` saw, and checks that the file opened is the one seen (a
/// link swapped in between is refused).
fn open_checked(path: &Path, seen: &Metadata) -> Result<File, FileError> {
    let file = File::open(path).map_err(|e| FileError::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let now = file.metadata().map_err(|e| FileError::io(path, e))?;
        if now.dev() != seen.dev() || now.ino() != seen.ino() {
            return Err(FileError::Symlink {
                path: path.to_path_buf(),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = seen;
    Ok(file)
}

fn read_bounded(
    mut file: impl std::io::Read,
    path: &Path,
    limit: usize,
) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    file.by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::io(path, e))?;
    if bytes.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// The bytes of the regular file `root/rel`, `None` if there is none. Links and special files
/// are errors and are never opened.
pub fn read_existing(root: &Path, rel: &str) -> Result<Option<Vec<u8>>, FileError> {
    let Some(seen) = existing_file(root, rel)? else {
        return Ok(None);
    };
    let path = root.join(rel);
    let file = open_checked(&path, &seen)?;
    read_bounded(file, &path, MAX_GENERATED_BYTES).map(Some)
}

/// Reads an input file (a config, a kubeconfig, a template) of at most `limit` bytes. The limit
/// applies while reading, so `/dev/zero` or an endless FIFO stop there. A folder is refused
/// before it is opened; links are followed (inputs are only read).
pub fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| FileError::io(path, e))?;
    if meta.is_dir() {
        return Err(FileError::Kind {
            path: path.to_path_buf(),
            found: "folder",
            wanted: "file",
        });
    }
    if meta.is_file() && meta.len() > limit as u64 {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let file = File::open(path).map_err(|e| FileError::io(path, e))?;
    read_bounded(file, path, limit)
}

/// Makes `root/rel` a folder, creating what is missing; `root` itself may be a link (the user
/// named it), nothing below it may be.
pub fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf, FileError> {
    std::fs::create_dir_all(root).map_err(|e| FileError::io(root, e))?;
    let mut path = root.to_path_buf();
    if rel.is_empty() {
        return Ok(path);
    }
    check_name(rel)?;
    for seg in rel.split('/') {
        path.push(seg);
        loop {
            match lstat(&path)? {
                Some(m) if m.file_type().is_symlink() => {
                    return Err(FileError::Symlink { path });
                }
                Some(m) if m.is_dir() => break,
                Some(m) => {
                    return Err(FileError::Kind {
                        path,
                        found: kind_name(m.file_type()),
                        wanted: "folder",
                    });
                }
                None => match std::fs::create_dir(&path) {
                    Ok(()) => break,
                    // Created by someone else meanwhile: look again.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(FileError::io(&path, e)),
                },
            }
        }
    }
    Ok(path)
}

/// How [`write`] creates a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Permissions of a new file (an existing file keeps its own); default 0o666 less the umask.
    pub mode: Option<u32>,
    /// Flush to disk before the rename (for files a crash must not lose, as a kubeconfig).
    pub sync: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name for a temporary entry beside `name`, unique in this process and among processes (the
/// pid, read once: `std::process::id()` is a system call each time).
fn tmp_name(name: &str) -> String {
    static PID: OnceLock<u32> = OnceLock::new();
    format!(
        ".{name}.{}-{}.mldeploy-tmp",
        PID.get_or_init(std::process::id),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `root/rel` atomically. A link or special file at the path (or a link in a
/// folder on the way) is an error; an existing regular file is replaced — the caller has checked
/// that it may be.
pub fn write(root: &Path, rel: &str, bytes: &[u8], opts: WriteOptions) -> Result<(), FileError> {
    check_name(rel)?;
    let (dir_rel, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let dir = ensure_dir(root, dir_rel)?;
    let existing = existing_file(root, rel)?;
    write_in(&dir, name, existing.as_ref(), bytes, opts)
}

/// [`write`] into `dir`, a folder [`ensure_dir`] checked, of the file `name`, which `lstat`
/// saw as `existing` (a regular file) or not at all.
fn write_in(
    dir: &Path,
    name: &str,
    existing: Option<&Metadata>,
    bytes: &[u8],
    opts: WriteOptions,
) -> Result<(), FileError> {
    let path = dir.join(name);
    let tmp = dir.join(tmp_name(name));
    let mut open = OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mode = match existing {
            Some(m) => m.permissions().mode() & 0o7777,
            None => opts.mode.unwrap_or(0o666),
        };
        open.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = existing;
    let mut file = open.open(&tmp).map_err(|e| FileError::io(&tmp, e))?;
    let result = (|| {
        file.write_all(bytes)?;
        #[cfg(unix)]
        if let Some(m) = existing {
            // The umask applied at creation; an existing file's mode is kept exactly.
            file.set_permissions(m.permissions())?;
        }
        if opts.sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::io(&path, e));
    }
    Ok(())
}

/// Deletes the regular file `root/rel` (a missing one is fine), then the folders it leaves
/// empty, up to `root`. Links and special files are errors.
pub fn remove(root: &Path, rel: &str) -> Result<(), FileError> {
    if existing_file(root, rel)?.is_none() {
        return Ok(());
    }
    let path = root.join(rel);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::io(&path, e)),
    }
    let mut dir = rel.rsplit_once('/').map(|(d, _)| d);
    while let Some(d) = dir {
        // remove_dir fails on a non-empty folder (and on a link): that is where we stop.
        if std::fs::remove_dir(root.join(d)).is_err() {
            break;
        }
        dir = d.rsplit_once('/').map(|(d, _)| d);
    }
    Ok(())
}

/// Whether `bytes` carry mldeploy's header.
pub fn has_header(bytes: &[u8]) -> bool {
    bytes.starts_with(HEADER.as_bytes())
}

/// Whether the regular file at `path` (seen by `lstat` as `seen`) starts with the header; only
/// the header's bytes are read.
fn starts_with_header(path: &Path, seen: &Metadata) -> Result<bool, FileError> {
    let file = open_checked(path, seen)?;
    let mut head = Vec::with_capacity(HEADER.len());
    file.take(HEADER.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| FileError::io(path, e))?;
    Ok(has_header(&head))
}

/// A file's contents for [`sync_folder`], in pieces (a header line and a rendered text), so a
/// folder's files need not be joined in memory before they are written.
pub trait Contents {
    /// The pieces, in order.
    fn parts(&self) -> [&[u8]; 2];
}

impl Contents for String {
    fn parts(&self) -> [&[u8]; 2] {
        [self.as_bytes(), b""]
    }
}

impl<A: AsRef<str>, B: AsRef<str>> Contents for (A, B) {
    fn parts(&self) -> [&[u8]; 2] {
        [self.0.as_ref().as_bytes(), self.1.as_ref().as_bytes()]
    }
}

/// Whether `bytes` are the pieces `parts` joined.
fn same_as(bytes: &[u8], [a, b]: [&[u8]; 2]) -> bool {
    bytes.len() == a.len() + b.len() && bytes.starts_with(a) && bytes.ends_with(b)
}

/// What [`sync_folder`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Names written (new or changed).
    pub written: Vec<String>,
    /// Names deleted.
    pub removed: Vec<String>,
}

/// Makes the folder `root/sub` hold `wanted` (file name → contents, each starting with
/// [`HEADER`]): writes what is new or changed, and deletes files that carry the header, are no
/// longer wanted, and that `candidate` accepts. A file without the header at a wanted name, or a
/// link or special file there, is an error and nothing is written. Entries that are not wanted
/// and not ours (links, FIFOs, hand-written files) are left alone and never opened unless they
/// are regular files.
pub fn sync_folder<C: Contents>(
    root: &Path,
    sub: &str,
    wanted: &BTreeMap<String, C>,
    candidate: impl Fn(&str) -> bool,
) -> Result<Synced, FileError> {
    plan_folder(root, sub, wanted, candidate)?.commit()
}

/// What [`sync_folder`] will do to one folder, checked but not yet done: plan every folder an
/// output touches first, and commit only when all of them passed, so that a refusal in one
/// folder leaves the others as they were.
#[derive(Debug)]
pub struct FolderPlan<'a, C> {
    root: &'a Path,
    sub: &'a str,
    dir: PathBuf,
    wanted: &'a BTreeMap<String, C>,
    /// What the folder held at wanted names (each `lstat`ed once).
    present: BTreeMap<String, Metadata>,
    /// The names it will write and delete.
    pub synced: Synced,
}

/// Checks what [`sync_folder`] would change in `root/sub`, changing nothing but creating the
/// folder itself when it is missing.
pub fn plan_folder<'a, C: Contents>(
    root: &'a Path,
    sub: &'a str,
    wanted: &'a BTreeMap<String, C>,
    candidate: impl Fn(&str) -> bool,
) -> Result<FolderPlan<'a, C>, FileError> {
    if let Some(bad) = wanted
        .keys()
        .find(|n| !is_plain_relative(n) || n.contains('/'))
    {
        return Err(FileError::UnsafeName { name: bad.clone() });
    }
    let dir = ensure_dir(root, sub)?;
    let mut synced = Synced::default();
    // What one listing of the folder found at wanted names (each `lstat`ed once): the checks
    // and the writes use it rather than looking at each path again.
    let mut present: BTreeMap<String, Metadata> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| FileError::io(&dir, e))? {
        let entry = entry.map_err(|e| FileError::io(&dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = dir.join(&name);
        let Some(meta) = lstat(&path)? else {
            continue;
        };
        if let Some(text) = wanted.get(&name) {
            if meta.file_type().is_symlink() {
                return Err(FileError::Symlink { path });
            }
            if !meta.is_file() {
                return Err(FileError::Kind {
                    path,
                    found: kind_name(meta.file_type()),
                    wanted: "regular file",
                });
            }
            let old = read_bounded(open_checked(&path, &meta)?, &path, MAX_GENERATED_BYTES)?;
            if !same_as(&old, text.parts()) {
                if !has_header(&old) {
                    return Err(FileError::NotOurs { path });
                }
                synced.written.push(name.clone());
            }
            present.insert(name, meta);
        } else if meta.is_file() && candidate(&name) && starts_with_header(&path, &meta)? {
            synced.removed.push(name);
        }
    }
    synced
        .written
        .extend(wanted.keys().filter(|n| !present.contains_key(*n)).cloned());
    synced.written.sort();
    synced.removed.sort();
    Ok(FolderPlan {
        root,
        sub,
        dir,
        wanted,
        present,
        synced,
    })
}

impl<C: Contents> FolderPlan<'_, C> {
    /// Does what was planned: deletes, then writes (each write atomic).
    pub fn commit(self) -> Result<Synced, FileError> {
        let rel = |n: &str| {
            if self.sub.is_empty() {
                n.to_string()
            } else {
                format!("{}/{n}", self.sub)
            }
        };
        for name in &self.synced.removed {
            remove(self.root, &rel(name))?;
        }
        // One buffer, reused: each file is joined from its pieces and written in one call.
        let mut buffer = Vec::new();
        for name in &self.synced.written {
            let [a, b] = self.wanted[name].parts();
            buffer.clear();
            buffer.extend_from_slice(a);
            buffer.extend_from_slice(b);
            write_in(
                &self.dir,
                name,
                self.present.get(name),
                &buffer,
                WriteOptions::default(),
            )?;
        }
        Ok(self.synced)
    }
}

/// Creates the folder `root`, which does not exist yet, holding `folders` (sub-folder, then file
/// name → contents): every file is written into a temporary sibling folder, which then takes
/// `root`'s place with one rename. A fresh output costs one `open`, `write` and `close` per file,
/// and a reader never sees it half-written. Returns `false`, having changed nothing, when `root`
/// exists (or ends in `..`): the caller then uses [`plan_folder`], which checks what is there.
///
/// Safe without [`plan_folder`]'s checks because nothing below the temporary folder pre-exists:
/// it is created by `mkdir`, which fails on anything already at its path (a link included), and
/// each file in it with `O_EXCL`. `root` is first created empty by this function, so the rename
/// replaces only that empty folder: a link, a file or a non-empty folder put there meanwhile makes
/// the rename fail (`ENOTDIR`, `ENOTEMPTY`), and the temporary folder is removed.
pub fn create_folder<C: Contents + Sync>(
    root: &Path,
    folders: &[(&str, &BTreeMap<String, C>)],
) -> Result<bool, FileError> {
    for (sub, files) in folders {
        check_name(sub)?;
        if let Some(bad) = files
            .keys()
            .find(|n| !is_plain_relative(n) || n.contains('/'))
        {
            return Err(FileError::UnsafeName { name: bad.clone() });
        }
    }
    let Some(Component::Normal(name)) = root.components().next_back() else {
        return Ok(false);
    };
    let Some(name) = name.to_str() else {
        return Ok(false);
    };
    if lstat(root)?.is_some() {
        return Ok(false);
    }
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(|e| FileError::io(parent, e))?;
    match std::fs::create_dir(root) {
        Ok(()) => {}
        // Made by someone else meanwhile: it is theirs, and checked file by file.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(FileError::io(root, e)),
    }
    let tmp = parent.join(tmp_name(name));
    let filled = fill_new_folder(&tmp, folders);
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        // Still the empty folder created above: nobody else's.
        let _ = std::fs::remove_dir(root);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, root) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(FileError::io(root, e));
    }
    Ok(true)
}

/// Creates `dir` (which must not exist) with `folders` in it, each file created exclusively.
/// Many files are written by several threads: creating a file is a few system calls, and they
/// were most of a large render's time.
fn fill_new_folder<C: Contents + Sync>(
    dir: &Path,
    folders: &[(&str, &BTreeMap<String, C>)],
) -> Result<(), FileError> {
    std::fs::create_dir(dir).map_err(|e| FileError::io(dir, e))?;
    let subs: Vec<PathBuf> = folders.iter().map(|(sub, _)| dir.join(sub)).collect();
    for path in &subs {
        std::fs::create_dir(path).map_err(|e| FileError::io(path, e))?;
    }
    let files: Vec<(&Path, &str, &C)> = folders
        .iter()
        .zip(&subs)
        .flat_map(|((_, files), sub)| {
            files
                .iter()
                .map(move |(name, contents)| (sub.as_path(), name.as_str(), contents))
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    if threads < 2 || files.len() < PARALLEL_WRITES_FROM {
        return create_files(&files);
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || create_files(part)))
            .collect();
        // Every thread is joined; the first error in file order is the one reported.
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<(), FileError>>()
    })
}

/// Below this many files, [`fill_new_folder`] writes on one thread.
const PARALLEL_WRITES_FROM: usize = 64;

/// Creates each file (in folders that exist) with `O_EXCL` and writes its pieces in one
/// `writev`, without joining them first.
fn create_files<C: Contents>(files: &[(&Path, &str, &C)]) -> Result<(), FileError> {
    for (dir, name, contents) in files {
        let path = dir.join(name);
        let [a, b] = contents.parts();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| {
                let written =
                    f.write_vectored(&[std::io::IoSlice::new(a), std::io::IoSlice::new(b)])?;
                // A short write (not seen on regular files, but allowed): the rest in order.
                if written < a.len() {
                    f.write_all(&a[written..])?;
                    f.write_all(b)
                } else {
                    f.write_all(&b[written - a.len()..])
                }
            })
            .map_err(|e| FileError::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> String {
        format!("{HEADER}. x\n{text}")
    }

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["a", "a/b.yaml", "apps/e/x.yaml", ".mldeploy-manifest.json"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "", "/a", "../a", "a/../b", "a//b", "./a", "a/", "a\\b", "a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }

    #[test]
    fn writes_are_atomic_and_keep_the_mode_of_the_file_they_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a/b/c.txt", b"one", WriteOptions::default()).expect("writes");
        assert_eq!(
            std::fs::read(dir.path().join("a/b/c.txt")).expect("read"),
            b"one"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let p = dir.path().join("a/b/c.txt");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
            write(dir.path(), "a/b/c.txt", b"two", WriteOptions::default()).expect("writes");
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
            write(
                dir.path(),
                "k",
                b"x",
                WriteOptions {
                    mode: Some(0o600),
                    sync: true,
                },
            )
            .expect("writes");
            let mode = std::fs::metadata(dir.path().join("k"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["c.txt"], "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn links_below_the_root_are_neither_written_through_nor_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::fs::write(elsewhere.path().join("x"), header("theirs")).expect("write");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("linked")).expect("link");
        std::os::unix::fs::symlink(elsewhere.path().join("x"), dir.path().join("file"))
            .expect("link");
        let err = write(dir.path(), "linked/x", b"ours", WriteOptions::default());
        assert!(matches!(err, Err(FileError::Symlink { .. })), "{err:?}");
        let err = write(dir.path(), "file", b"ours", WriteOptions::default());
        assert!(matches!(err, Err(FileError::Symlink { .. })), "{err:?}");
        assert!(matches!(
            remove(dir.path(), "linked/x"),
            Err(FileError::Symlink { .. })
        ));
        assert!(matches!(
            remove(dir.path(), "file"),
            Err(FileError::Symlink { .. })
        ));
        assert!(matches!(
            read_existing(dir.path(), "file"),
            Err(FileError::Symlink { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(elsewhere.path().join("x")).expect("read"),
            header("theirs")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("f.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        assert!(matches!(
            read_existing(dir.path(), "f.yaml"),
            Err(FileError::Kind { found: "FIFO", .. })
        ));
        let wanted: BTreeMap<String, String> = [("f.yaml".to_string(), header("x"))].into();
        assert!(matches!(
            sync_folder(dir.path(), "", &wanted, |_| true),
            Err(FileError::Kind { found: "FIFO", .. })
        ));
        // Not wanted: left alone (and not opened, or this would hang).
        let other: BTreeMap<String, String> = [("g.yaml".to_string(), header("x"))].into();
        let synced = sync_folder(dir.path(), "", &other, |_| true).expect("syncs");
        assert_eq!(synced.written, ["g.yaml"]);
        assert!(fifo.exists());
    }

    #[test]
    fn sync_replaces_and_deletes_only_files_with_the_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("m")).expect("mkdir");
        std::fs::write(d.join("m/stale.yaml"), header("old")).expect("write");
        std::fs::write(d.join("m/mine.yaml"), "by hand\n").expect("write");
        std::fs::write(d.join("m/a.yaml"), header("a0")).expect("write");
        let wanted: BTreeMap<String, String> = [
            ("a.yaml".to_string(), header("a1")),
            ("b.yaml".to_string(), header("b")),
        ]
        .into();
        let synced = sync_folder(d, "m", &wanted, |_| true).expect("syncs");
        assert_eq!(synced.written, ["a.yaml", "b.yaml"]);
        assert_eq!(synced.removed, ["stale.yaml"]);
        assert!(d.join("m/mine.yaml").exists());
        // A hand-written file at a wanted name stops the run before anything changes.
        std::fs::write(d.join("m/c.yaml"), "by hand\n").expect("write");
        let mut more = wanted.clone();
        more.insert("c.yaml".into(), header("c"));
        more.insert("d.yaml".into(), header("d"));
        let err = sync_folder(d, "m", &more, |_| true).expect_err("refused");
        assert!(matches!(err, FileError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("c.yaml"), "{err}");
        assert!(!d.join("m/d.yaml").exists());
        let bad: BTreeMap<String, String> = [("../x".to_string(), header("x"))].into();
        assert!(matches!(
            sync_folder(d, "m", &bad, |_| true),
            Err(FileError::UnsafeName { .. })
        ));
    }

    #[test]
    fn a_new_folder_appears_whole_and_an_existing_one_is_left_to_the_checked_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a: BTreeMap<String, String> = [
            ("x.yaml".to_string(), header("x")),
            ("y.yaml".to_string(), header("y")),
        ]
        .into();
        let none: BTreeMap<String, String> = BTreeMap::new();
        let root = dir.path().join("deep/out");
        assert!(create_folder(&root, &[("m", &a), ("t", &none)]).expect("creates"));
        assert_eq!(
            tree_of(dir.path()),
            [
                "deep/",
                "deep/out/",
                "deep/out/m/",
                "deep/out/m/x.yaml",
                "deep/out/m/y.yaml",
                "deep/out/t/"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("m/y.yaml")).expect("read"),
            header("y")
        );
        // It exists now: nothing is done, whatever is asked.
        let b: BTreeMap<String, String> = [("z.yaml".to_string(), header("z"))].into();
        assert!(!create_folder(&root, &[("m", &b)]).expect("declines"));
        assert!(!root.join("m/z.yaml").exists());
        // A link where the folder would go is not replaced or followed.
        #[cfg(unix)]
        {
            let elsewhere = tempfile::tempdir().expect("tempdir");
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(elsewhere.path(), &link).expect("link");
            assert!(!create_folder(&link, &[("m", &b)]).expect("declines"));
            assert!(
                std::fs::read_dir(elsewhere.path())
                    .expect("list")
                    .next()
                    .is_none()
            );
        }
        // A bad name is refused before anything is created, and nothing is left behind.
        let bad: BTreeMap<String, String> = [("../x".to_string(), header("x"))].into();
        let other = dir.path().join("other");
        assert!(matches!(
            create_folder(&other, &[("m", &bad)]),
            Err(FileError::UnsafeName { .. })
        ));
        assert!(!other.exists());
        let left: Vec<String> = tree_of(dir.path())
            .into_iter()
            .filter(|p| p.contains("mldeploy-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn many_files_are_written_by_several_threads_each_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let many: BTreeMap<String, (String, String)> = (0..300)
            .map(|i| {
                (
                    format!("f{i}.yaml"),
                    (header(""), format!("n: {i}\n").repeat(i)),
                )
            })
            .collect();
        let root = dir.path().join("out");
        assert!(create_folder(&root, &[("m", &many)]).expect("creates"));
        for (name, (head, text)) in &many {
            let bytes = std::fs::read_to_string(root.join("m").join(name)).expect("read");
            assert_eq!(bytes, format!("{head}{text}"), "{name}");
        }
        assert_eq!(tree_of(dir.path()).len(), 2 + many.len());
    }

    /// Every path under `dir`, folders with a trailing `/`, sorted.
    fn tree_of(dir: &Path) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("list") {
                let p = e.expect("entry").path();
                let rel = p
                    .strip_prefix(base)
                    .expect("below")
                    .to_string_lossy()
                    .into_owned();
                let meta = std::fs::symlink_metadata(&p).expect("lstat");
                if meta.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(&p, base, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn inputs_stop_at_the_limit_while_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            read_input(dir.path(), 10),
            Err(FileError::Kind {
                found: "folder",
                ..
            })
        ));
        let f = dir.path().join("f");
        std::fs::write(&f, "0123456789abc").expect("write");
        assert!(matches!(
            read_input(&f, 10),
            Err(FileError::TooLarge { .. })
        ));
        assert_eq!(read_input(&f, 13).expect("reads"), b"0123456789abc");
        #[cfg(target_os = "linux")]
        assert!(matches!(
            read_input(Path::new("/dev/zero"), 1024),
            Err(FileError::TooLarge { .. })
        ));
        assert!(
            read_input(&dir.path().join("missing"), 10)
                .expect_err("missing")
                .is_not_found()
        );
    }
}
