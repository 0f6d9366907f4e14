//! MikroTik RouterOS: the native knock-rule generator (`knockr routeros
//! rules`). The REST client for address lists comes later (issue 4).

pub mod rules;
