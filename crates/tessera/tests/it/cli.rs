//! Every CLI command end to end: the real `tessera` binary against a real `tessera serve`, each
//! effect checked through the API.
