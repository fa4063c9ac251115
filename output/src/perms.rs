//! Mode and group of the files and directories flowtap creates: event logs
//! (and their rotated and compressed files), spools and PCAP exports. They
//! hold payloads and cleartext credentials, so they are not left to the
//! process umask (0644 usually): a file is created 0640 and a directory 0750
//! by default, or with the `file_mode` / `group` of its file sink or export
//! rule.
//!
//! The mode is exact whatever the umask: the file is opened with the mode
//! (so it is never wider, not even for an instant, since a umask only removes
//! bits), then set again on the open descriptor (`fchmod`), because a strict
//! umask (027, 077) would otherwise narrow it and silently take the read bit
//! from the configured `group`. The group is set on the descriptor too
//! (`fchown`) before a byte is written. Only files flowtap creates are
//! touched: a file that already exists (an earlier run's current file, a
//! device such as /dev/null, a FIFO) keeps its owner and mode.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode and group of what a sink or export rule creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePerms {
    /// Permission bits of files (at most 0o777).
    pub mode: u32,
    /// Group set on every created file and directory (`None`: the process's).
    pub gid: Option<u32>,
}

/// Files 0640, directories 0750, the process's group.
pub const DEFAULT_FILE_MODE: u32 = 0o640;

impl Default for FilePerms {
    fn default() -> Self {
        FilePerms {
            mode: DEFAULT_FILE_MODE,
            gid: None,
        }
    }
}

impl FilePerms {
    /// Directories: the file mode plus the search bit wherever it grants
    /// read (0640 -> 0750, 0600 -> 0700, 0644 -> 0755).
    pub fn dir_mode(self) -> u32 {
        let m = self.mode & 0o777;
        m | ((m & 0o444) >> 2)
    }

    /// Parses an octal mode such as `"0640"` (or `"640"`, `"0o640"`). The
    /// owner must be able to read and write (flowtap appends and rotates);
    /// no setuid, setgid or sticky bit.
    pub fn parse_mode(v: &str) -> Result<u32, String> {
        let t = v.trim();
        let digits = t.strip_prefix("0o").unwrap_or(t);
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
        {
            return Err(format!("`{v}` is not an octal mode such as \"0640\""));
        }
        let m = u32::from_str_radix(digits, 8).map_err(|_| format!("`{v}` is not octal"))?;
        if m > 0o777 {
            return Err(format!("`{v}`: no setuid, setgid or sticky bit"));
        }
        if m & 0o600 != 0o600 {
            return Err(format!(
                "`{v}`: the owner needs read and write (0600 at least)"
            ));
        }
        Ok(m)
    }

    /// The id of group `name` (a name from the group database, NSS
    /// included, or a number).
    pub fn group_id(name: &str) -> Result<u32, String> {
        let n = name.trim();
        if n.is_empty() {
            return Err("empty group name".into());
        }
        if let Ok(gid) = n.parse::<u32>() {
            return Ok(gid);
        }
        match nix::unistd::Group::from_name(n) {
            Ok(Some(g)) => Ok(g.gid.as_raw()),
            Ok(None) => Err(format!("no group named `{n}`")),
            Err(e) => Err(format!("cannot look up group `{n}`: {e}")),
        }
    }

    /// Sets the mode and group on a file or directory flowtap just created.
    pub fn apply(self, f: &File, mode: u32) -> io::Result<()> {
        f.set_permissions(Permissions::from_mode(mode))?;
        if let Some(gid) = self.gid {
            std::os::unix::fs::fchown(f, None, Some(gid))?;
        }
        Ok(())
    }

    /// Opens `path` with `opts` (which must not set `create`/`create_new`):
    /// creates it with these permissions when it does not exist, else opens
    /// the existing file and leaves its mode and owner as they are.
    pub fn open_or_create(self, opts: &OpenOptions, path: &Path) -> io::Result<File> {
        let mut create = opts.clone();
        create.create_new(true).mode(self.mode);
        match create.open(path) {
            Ok(f) => {
                self.apply(&f, self.mode)?;
                Ok(f)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => opts.open(path),
            Err(e) => Err(e),
        }
    }

    /// Creates a new file (it must not exist) with these permissions.
    pub fn create_new(self, opts: &OpenOptions, path: &Path) -> io::Result<File> {
        let mut create = opts.clone();
        let f = create.create_new(true).mode(self.mode).open(path)?;
        self.apply(&f, self.mode)?;
        Ok(f)
    }

    /// Creates `dir` and its missing parents with [`FilePerms::dir_mode`]
    /// and the group; existing directories are left as they are.
    pub fn create_dir_all(self, dir: &Path) -> io::Result<()> {
        if dir.as_os_str().is_empty() || dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.create_dir_all(parent)?;
        }
        let mode = self.dir_mode();
        match DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            // Made meanwhile by someone else: theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(e),
        }
        fs::set_permissions(dir, Permissions::from_mode(mode))?;
        if let Some(gid) = self.gid {
            std::os::unix::fs::chown(dir, None, Some(gid))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes_parse_and_directories_get_search_bits() {
        assert_eq!(FilePerms::parse_mode("0640"), Ok(0o640));
        assert_eq!(FilePerms::parse_mode("600"), Ok(0o600));
        assert_eq!(FilePerms::parse_mode("0o660"), Ok(0o660));
        for bad in ["", "0648", "rw-r-----", "04640", "0440", "0200", "77777"] {
            assert!(FilePerms::parse_mode(bad).is_err(), "{bad}");
        }
        let d = |mode| FilePerms { mode, gid: None }.dir_mode();
        assert_eq!(d(0o640), 0o750);
        assert_eq!(d(0o600), 0o700);
        assert_eq!(d(0o644), 0o755);
        assert_eq!(d(0o660), 0o770);
        assert!(FilePerms::group_id("no-such-group-flowtap").is_err());
        assert_eq!(FilePerms::group_id("0"), Ok(0));
    }

    #[test]
    fn created_files_get_the_mode_existing_ones_keep_theirs() {
        let dir = std::env::temp_dir().join(format!("flowtap-perms-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let p = FilePerms {
            mode: 0o660,
            gid: None,
        };
        let sub = dir.join("a/b");
        p.create_dir_all(&sub).expect("mkdir");
        for d in [&dir, &dir.join("a"), &sub] {
            assert_eq!(fs::metadata(d).expect("meta").mode() & 0o7777, 0o770);
        }
        let f = sub.join("f");
        let mut opts = OpenOptions::new();
        opts.append(true);
        p.open_or_create(&opts, &f).expect("create");
        assert_eq!(fs::metadata(&f).expect("meta").mode() & 0o777, 0o660);
        fs::set_permissions(&f, Permissions::from_mode(0o600)).expect("chmod");
        p.open_or_create(&opts, &f).expect("reopen");
        assert_eq!(fs::metadata(&f).expect("meta").mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
