//! `terraform-provider-tessera`: started by Terraform, it prints the go-plugin handshake and
//! serves the `tessera` provider until Terraform is done with it.

use std::process::ExitCode;

fn main() -> ExitCode {
    // tf-provider appends a backtrace to every diagnostic when backtraces are enabled, and
    // Terraform 1.0's crash detector mistakes Rust frame names for a Go panic. The variable
    // cannot be set in-process without `unsafe`, so the provider starts itself again with it.
    #[cfg(unix)]
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none_or(|v| v != "0") {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let err =
                std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("RUST_LIB_BACKTRACE", "0").exec();
            eprintln!("terraform-provider-tessera: cannot restart itself: {err}");
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("terraform-provider-tessera: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime
        .block_on(tf_provider::serve("tessera", terraform_provider_tessera::provider::TesseraProvider::default()))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}
