//! The `mldeploy` binary: parse the command line, run, exit with the command's code.

fn main() {
    std::process::exit(mldeploy::main_with_args(std::env::args_os()));
}
