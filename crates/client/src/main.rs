//! `gostint-client`: see the library's documentation and `gostint-client --help`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(gostint_client::main_with(std::env::args().collect()).await)
}
