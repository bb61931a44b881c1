//! `mldeploy man`: the man page, generated from the same clap types as `--help`.

use super::{Error, emit, exit};
use crate::cli::{Cli, ManArgs};

/// First line of every page `man --out` writes: a roff comment naming mldeploy.
const MAN_HEADER: &str = ".\\\" Rendered by mldeploy";

/// The page of `cmd` and of each subcommand (`mldeploy-render.1`, …), named and built as
/// `clap_mangen::generate_to` does, but kept in memory so that [`crate::fsx`] writes them.
fn pages(cmd: clap::Command) -> Result<Vec<(String, Vec<u8>)>, Error> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut page = format!("{MAN_HEADER} from the command-line definition.\n").into_bytes();
        man.render(&mut page)
            .map_err(|e| Error::msg(format!("rendering the man page: {e}"), None))?;
        out.push((man.get_filename(), page));
        Ok(())
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out)?;
    Ok(out)
}

pub(super) fn run(args: &ManArgs) -> Result<i32, Error> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Error::msg(format!("rendering the man page: {e}"), None))?;
            emit(&String::from_utf8_lossy(&page));
        }
        Some(dir) => {
            for (name, page) in &pages(cmd)? {
                // Pages carry a roff comment as their header: only those are replaced.
                if let Some(old) = crate::fsx::read_existing(dir, name)?
                    && !old.starts_with(MAN_HEADER.as_bytes())
                {
                    return Err(crate::fsx::FileError::NotOurs {
                        path: dir.join(name),
                    }
                    .into());
                }
                crate::fsx::write(dir, name, page, crate::fsx::WriteOptions::default())?;
            }
            errln!(
                "wrote man pages into {} (try `man {}/mldeploy.1`)",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(exit::OK)
}
