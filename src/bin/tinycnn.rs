//! The `tinycnn` command; everything lives in `tinycnn::cli`.

fn main() -> std::process::ExitCode {
    tinycnn::cli::main()
}
