//! Tools the build and the tests need beyond cargo, installed on first use: nothing yet.
//! (The Terraform provider adds protoc and terraform here.)

pub fn ensure() -> Result<(), String> {
    Ok(())
}
