//! The migrations are embedded at compile time (`sqlx::migrate!`): a file
//! added to or taken from `migrations/` must rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
