"""Tessera's AWS STS compatibility endpoint, driven by the real AWS SDK for Python (boto3).

Run by `crates/testkit/tests/it/sts.rs`, which starts a server and passes what to call in
the environment. Prints one JSON object per call on stdout; the Rust test checks them and
uses the returned SessionToken against Tessera's API.

  TESSERA_STS_URL    the endpoint (`<server>/v2/assumed-roles/compatibility/aws/sts`)
  TESSERA_BEARER     a Tessera API key, sent as `Authorization: Bearer` (AssumeRole)
  ROLE_ARN           arn:aws:iam::<organization id>:role/<role id>
  BAD_ROLE_ARN       a role the caller may not assume (the SDK must raise AccessDenied)
  WEB_IDENTITY_TOKEN, PROVIDER_ID   optional: AssumeRoleWithWebIdentity as well
"""

import json
import os
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError


def client(bearer=None):
    # Tessera checks no SigV4 signature: AssumeRole is authenticated by the bearer, as with
    # every other Tessera call; AssumeRoleWithWebIdentity by its token (boto3 sends it unsigned).
    sts = boto3.client(
        "sts",
        endpoint_url=os.environ["TESSERA_STS_URL"],
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}),
    )
    if bearer:

        def add_bearer(request, **_):
            request.headers["Authorization"] = "Bearer " + bearer

        sts.meta.events.register("before-send.sts.AssumeRole", add_bearer)
    return sts


def credentials(answer):
    c = answer["Credentials"]
    return {
        "AccessKeyId": c["AccessKeyId"],
        "SecretAccessKey": c["SecretAccessKey"],
        "SessionToken": c["SessionToken"],
        "Expiration": c["Expiration"].isoformat(),
        "Arn": answer["AssumedRoleUser"]["Arn"],
        "AssumedRoleId": answer["AssumedRoleUser"]["AssumedRoleId"],
    }


def error_of(call):
    try:
        call()
    except ClientError as e:
        return {"error": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
    return {"error": None}


def main():
    sts = client(os.environ["TESSERA_BEARER"])
    role = os.environ["ROLE_ARN"]
    out = {"sdk": "boto3 " + boto3.__version__}
    out["assume_role"] = credentials(sts.assume_role(RoleArn=role, RoleSessionName="boto3-ci", DurationSeconds=900))
    out["denied"] = error_of(lambda: sts.assume_role(RoleArn=os.environ["BAD_ROLE_ARN"], RoleSessionName="nope"))
    out["bad_arn"] = error_of(lambda: sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="nope"))
    out["no_bearer"] = error_of(lambda: client().assume_role(RoleArn=role, RoleSessionName="nope"))
    token = os.environ.get("WEB_IDENTITY_TOKEN")
    if token:
        anonymous = client()
        answer = anonymous.assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="boto3-web", WebIdentityToken=token, ProviderId=os.environ["PROVIDER_ID"]
        )
        out["assume_role_with_web_identity"] = credentials(answer)
        out["bad_token"] = error_of(
            lambda: anonymous.assume_role_with_web_identity(
                RoleArn=role, RoleSessionName="nope", WebIdentityToken="not.a.token", ProviderId=os.environ["PROVIDER_ID"]
            )
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
