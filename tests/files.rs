//! Every file writer follows the rules of `src/fsx.rs`: no writing through or deleting links, no
//! opening FIFOs, no overwriting files mldeploy did not write; inputs are read with a limit; a
//! closed stdout or stderr never panics.

use std::path::{Path, PathBuf};

use crate::mldeploy;

/// One model, one on-prem cluster, one environment.
const SMALL: &str = "version: 1\nproject: p\nmodels:\n  - name: m\n    image: r.example.com/m:1\n\
                     clusters:\n  c: {cloud: onprem}\nenvironments:\n  e: {cluster: c}\n";

fn config_in(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("mldeploy.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn minimal_in(dir: &Path) -> PathBuf {
    config_in(dir, SMALL)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn render_out(config: &Path, out: &Path) -> std::process::Output {
    mldeploy()
        .arg("render")
        .arg("-f")
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// The files under `dir` (following nothing), sorted, with their contents.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("list") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        out.push((name, std::fs::read_to_string(&p).unwrap_or_default()));
    }
    out.sort();
    out
}

/// The first rendered manifest's file name (`manifests/<name>`).
fn first_manifest(config: &Path) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render_out(config, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("manifests"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.remove(0)
}

#[cfg(unix)]
#[test]
fn render_out_does_not_write_into_or_delete_from_a_linked_folder() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let elsewhere = tempfile::tempdir().expect("tempdir");
    // A file of ours (the header) that a render would delete as stale if it followed the link.
    let theirs = "# Rendered by mldeploy from x. Edit mldeploy.yaml, not this file.\nkind: X\n";
    std::fs::write(elsewhere.path().join("99-x-stale.yaml"), theirs).expect("write");
    let before = tree(elsewhere.path());
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.path(), out_dir.join("manifests")).expect("link");
    let out = render_out(&config, &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("manifests is a symbolic link"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert_eq!(
        tree(elsewhere.path()),
        before,
        "nothing written or deleted there"
    );
}

#[cfg(unix)]
#[test]
fn render_out_does_not_overwrite_a_linked_file_or_a_hand_written_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let name = first_manifest(&config);

    // A link at a rendered path: the target keeps its bytes.
    let target = work.path().join("precious.yaml");
    std::fs::write(&target, "precious\n").expect("write");
    let out_dir = work.path().join("out1");
    std::fs::create_dir_all(out_dir.join("manifests")).expect("mkdir");
    std::os::unix::fs::symlink(&target, out_dir.join("manifests").join(&name)).expect("link");
    let out = render_out(&config, &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "precious\n"
    );

    // A hand-written file (no header) at a rendered path: refused, named, kept.
    let out_dir = work.path().join("out2");
    std::fs::create_dir_all(out_dir.join("manifests")).expect("mkdir");
    let hand = out_dir.join("manifests").join(&name);
    std::fs::write(&hand, "# mine\nkind: Mine\n").expect("write");
    let out = render_out(&config, &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&name) && err.contains("was not written by mldeploy"),
        "{err}"
    );
    assert!(err.contains("move the file away"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&hand).expect("read"),
        "# mine\nkind: Mine\n"
    );

    // Our own file at the path is replaced; a second run changes nothing.
    std::fs::remove_file(&hand).expect("rm");
    assert!(render_out(&config, &out_dir).status.success());
    assert!(render_out(&config, &out_dir).status.success());
}

#[cfg(unix)]
#[test]
fn a_fifo_in_the_out_folder_is_an_error_not_a_hang() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let name = first_manifest(&config);
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(out_dir.join("manifests")).expect("mkdir");
    std::fs::create_dir_all(out_dir.join("terraform")).expect("mkdir");
    // At a rendered path: an error naming it.
    mkfifo(&out_dir.join("manifests").join(&name));
    let out = render_out(&config, &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a FIFO, not a regular file"),
        "{}",
        stderr(&out)
    );
    // Anywhere else: left alone, never opened.
    std::fs::remove_file(out_dir.join("manifests").join(&name)).expect("rm");
    mkfifo(&out_dir.join("manifests").join("zz-other.yaml"));
    mkfifo(&out_dir.join("terraform").join("zz.tf"));
    let out = render_out(&config, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn gitops_out_refuses_a_linked_folder_and_a_fifo() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out_dir = work.path().join("deploy");
    std::fs::create_dir(&out_dir).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.path(), out_dir.join("apps")).expect("link");
    let run = || {
        mldeploy()
            .arg("gitops")
            .arg("-f")
            .arg(&config)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .expect("runs")
    };
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("apps is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(tree(elsewhere.path()).is_empty());
    std::fs::remove_file(out_dir.join("apps")).expect("rm");
    mkfifo(&out_dir.join(".mldeploy-manifest.json"));
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a FIFO"), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn templates_eject_does_not_follow_a_dangling_link() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let list = mldeploy()
        .args(["templates", "list", "-f"])
        .arg(&config)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let name = text
        .split_whitespace()
        .next()
        .expect("a template")
        .to_string();
    let link = work.path().join("templates").join(&name);
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    let target = work.path().join("outside.yaml");
    std::os::unix::fs::symlink(&target, &link).expect("link");
    let out = mldeploy()
        .args(["templates", "eject", "--all", "-f"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists(), "the link was followed");
}

#[test]
fn config_reads_stop_at_the_size_limit_while_reading() {
    #[cfg(target_os = "linux")]
    {
        let out = mldeploy()
            .args(["validate", "-f", "/dev/zero"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("larger than 8 MiB"),
            "{}",
            stderr(&out)
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mldeploy()
        .arg("validate")
        .arg("-f")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is a folder"), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn an_endless_fifo_config_stops_at_the_limit() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("config.yaml");
    mkfifo(&fifo);
    let writer_path = fifo.clone();
    // Writes until the reader goes away (EPIPE), far past the limit if nobody stops reading.
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .expect("open fifo");
        let chunk = vec![b'#'; 64 * 1024];
        let mut written = 0usize;
        while f.write_all(&chunk).is_ok() {
            written += chunk.len();
            if written > 64 * 1024 * 1024 {
                break;
            }
        }
        written
    });
    let out = mldeploy()
        .arg("validate")
        .arg("-f")
        .arg(&fifo)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("larger than 8 MiB"),
        "{}",
        stderr(&out)
    );
    let written = writer.join().expect("writer");
    assert!(written < 64 * 1024 * 1024, "the reader kept reading");
}

#[test]
fn gitops_path_must_stay_inside_the_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = SMALL;
    for (path, says) in [
        ("../../..", "climbs out of the repository"),
        ("/etc", "is absolute"),
        ("a//b", "not a plain relative path"),
    ] {
        let config = config_in(
            dir.path(),
            &format!(
                "{base}gitops:\n  engine: argocd\n  repoURL: https://git.example.com/r.git\n  path: {path:?}\n"
            ),
        );
        let out = mldeploy()
            .arg("validate")
            .arg("-f")
            .arg(&config)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = stderr(&out);
        assert!(
            err.contains("gitops.path") && err.contains(says),
            "{path}: {err}"
        );
        assert!(err.contains("mldeploy.yaml:13:9"), "{path}: {err}");
    }
    // Valid: resolved against the config's folder, not the working directory.
    let config = config_in(
        dir.path(),
        &format!(
            "{base}gitops:\n  engine: argocd\n  repoURL: https://git.example.com/r.git\n  path: ./gitops/tree/\n"
        ),
    );
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = mldeploy()
        .current_dir(elsewhere.path())
        .arg("gitops")
        .arg("-f")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dir.path()
            .join("gitops/tree/.mldeploy-manifest.json")
            .is_file()
    );
    assert!(tree(elsewhere.path()).is_empty());
}

/// Runs mldeploy with stdout or stderr already closed by its reader, as `mldeploy … | head -1`
/// does once it has its line.
fn with_closed(args: &[&str], close_stdout: bool) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mldeploy"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawns");
    // The read end closes before mldeploy writes: every write fails with EPIPE.
    if close_stdout {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    child.wait_with_output().expect("waits")
}

#[test]
fn a_closed_stdout_or_stderr_is_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(dir.path()).display().to_string();
    let out = with_closed(&["render", "-f", &config], true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // A config error goes to a closed stderr: still exit 1, no panic (exit 101).
    let other = tempfile::tempdir().expect("tempdir");
    let bad = config_in(other.path(), "version: 1\nproject: x\nmodelz: []\n");
    let out = with_closed(&["validate", "-f", &bad.display().to_string()], false);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("panicked"));
    // A successful command whose messages cannot be shown still does its work, and says so by
    // its exit code.
    let out_dir = dir.path().join("out");
    let out = with_closed(
        &[
            "render",
            "-f",
            &config,
            "--out",
            &out_dir.display().to_string(),
        ],
        false,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out_dir.join("manifests").is_dir());
}

#[cfg(unix)]
#[test]
fn init_and_man_do_not_write_through_links_or_over_hand_written_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A dangling link where the config goes: refused without --force, never followed with it.
    let config = dir.path().join("mldeploy.yaml");
    let target = dir.path().join("elsewhere.yaml");
    std::os::unix::fs::symlink(&target, &config).expect("link");
    let out = mldeploy()
        .arg("init")
        .arg("-f")
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = mldeploy()
        .args(["init", "--force", "-f"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists());

    // man --out replaces its own pages only.
    let pages = dir.path().join("man");
    let man = || {
        mldeploy()
            .args(["man", "--out"])
            .arg(&pages)
            .output()
            .expect("runs")
    };
    assert!(man().status.success());
    assert!(man().status.success(), "its own pages are replaced");
    std::fs::write(pages.join("mldeploy-gpus.1"), "mine\n").expect("write");
    let out = man();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("mldeploy-gpus.1 exists and was not written by mldeploy"));
    assert_eq!(
        std::fs::read_to_string(pages.join("mldeploy-gpus.1")).expect("read"),
        "mine\n"
    );
}

#[cfg(unix)]
#[test]
fn render_out_refused_in_terraform_leaves_manifests_as_they_were() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = minimal_in(work.path());
    let out_dir = work.path().join("out");
    let out = render_out(&config, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut tf: Vec<PathBuf> = std::fs::read_dir(out_dir.join("terraform"))
        .expect("terraform/ rendered")
        .map(|e| e.expect("entry").path())
        .collect();
    tf.sort();
    // The user takes over one Terraform file; then the config gains a model.
    std::fs::write(&tf[0], "# my own\n").expect("write");
    let bigger = SMALL.replace(
        "models:\n",
        "models:\n  - name: second\n    image: r.example.com/second:1\n",
    );
    config_in(work.path(), &bigger);
    let before = tree(&out_dir.join("manifests"));
    let out = render_out(&config, &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was not written by mldeploy"),
        "{}",
        stderr(&out)
    );
    // Checked before anything changed: manifests/ does not hold half of the new render.
    assert_eq!(tree(&out_dir.join("manifests")), before);
    assert_eq!(std::fs::read_to_string(&tf[0]).expect("read"), "# my own\n");
}
