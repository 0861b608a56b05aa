//! The store contract suite, run against SQLite in memory and in a database file.

use custos_store_sqlite::SqliteStore;

mod in_memory {
    use super::*;

    custos_store::contract_tests!(|| SqliteStore::open_in_memory().expect("an in-memory database opens"));
}

mod in_a_file {
    use super::*;

    custos_store::contract_tests!(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(dir.path().join("custos.db")).expect("a database file opens");
        (store, dir)
    });
}
