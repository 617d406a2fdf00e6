//! The `tinycnn` command; everything lives in `tinycnn::internals::cli`.

fn main() -> std::process::ExitCode {
    tinycnn::internals::cli::main()
}
