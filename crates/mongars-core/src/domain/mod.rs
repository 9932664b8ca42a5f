//! Domain types. Values from outside are parsed into these at the edge, so
//! code past the edge never sees an invalid username or an empty password.

mod user;

pub use user::{NewUser, Password, Role, StoredUser, User, Username};
