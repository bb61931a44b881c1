//! `mldeploy man`: the man page, generated from the same clap types as `--help`.

use super::{Error, emit, exit};
use crate::cli::{Cli, ManArgs};

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
            let failed = |e: std::io::Error| Error::msg(format!("{}: {e}", dir.display()), None);
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(cmd, dir).map_err(failed)?;
            errln!(
                "wrote man pages into {} (try `man {}/mldeploy.1`)",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(exit::OK)
}
