"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SignupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320, examples=["hanako@example.jp"])
    password: str = Field(min_length=1, max_length=128)


class EmailVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="The six-digit code from the e-mail")


class EmailResend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)


class LoginCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(max_length=128)


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    level: str
    email_verified_at: datetime | None
    created_at: datetime
