//! The `commctl` binary: see the library documentation.

fn main() {
    std::process::exit(commctl::run());
}
