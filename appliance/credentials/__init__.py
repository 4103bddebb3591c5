"""SD-JWT credentials with key binding (RFC 9901) and Token Status Lists.

Issue with issue_sd_jwt, present with present, verify with verify_presentation and,
for revocation, verify_status_list_token plus check_status. Every verification
failure raises CredentialError with a machine-readable code.
"""

from appliance.credentials.errors import CredentialError, CredentialFileError
from appliance.credentials.holder import (
    CredentialFile,
    generate_holder_key,
    present,
    read_credential_file,
    write_credential_file,
)
from appliance.credentials.issue import issue_sd_jwt
from appliance.credentials.status_list import (
    StatusList,
    check_status,
    decode_status_list,
    encode_status_list,
    sign_status_list_token,
    verify_status_list_token,
)
from appliance.credentials.verify import VerifiedCredential, verify_presentation

__all__ = [
    "CredentialError",
    "CredentialFile",
    "CredentialFileError",
    "StatusList",
    "VerifiedCredential",
    "check_status",
    "decode_status_list",
    "encode_status_list",
    "generate_holder_key",
    "issue_sd_jwt",
    "present",
    "read_credential_file",
    "sign_status_list_token",
    "verify_presentation",
    "verify_status_list_token",
    "write_credential_file",
]
