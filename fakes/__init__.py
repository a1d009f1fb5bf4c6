"""Local fakes of the providers' wire formats (Resend API, FCM HTTP v1, an SMTP sink) for tests."""
