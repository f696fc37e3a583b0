//! Every check of `gostint-store-contract`, one test each, each on its own database.

gostint_store_contract::store_contract_tests!(crate::fresh_subject);
