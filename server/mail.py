"""Mail: every message goes to the outbox table; with an SMTP host set it is also sent, and the row says how that
went. Without SMTP, an admin reads the outbox (GET /api/admin/outbox)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import OutboxMail, utcnow
from server.settings import MailSettings


class Mailer:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, db: AsyncSession, recipient: str, subject: str, body: str) -> OutboxMail:
        mail = OutboxMail(recipient=recipient, subject=subject[:300], body=body)
        db.add(mail)
        if self.settings.smtp_host:
            try:
                await asyncio.to_thread(self._smtp, recipient, subject, body)
                mail.sent_at = utcnow()
            except (OSError, smtplib.SMTPException) as error:
                mail.error = f"{type(error).__name__}: {error}"[:500]
        await db.flush()
        return mail

    def _smtp(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.sender, recipient, subject
        message.set_content(body)
        assert self.settings.smtp_host is not None
        with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=20) as smtp:
            if self.settings.smtp_user:
                smtp.starttls()
                smtp.login(self.settings.smtp_user, self.settings.smtp_password or "")
            smtp.send_message(message)
