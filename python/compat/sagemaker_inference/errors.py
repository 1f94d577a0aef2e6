"""The toolkit's errors; berth answers with ``status_code`` for any of them."""


class UnsupportedFormatError(Exception):
    def __init__(self, content_type, **kwargs):
        self._message = "Content type %s is not supported by this framework." % content_type
        # berth: a format the default decoders or encoders lack answers 415 or 406 (see docs).
        self.status_code = kwargs.get("status_code", 415)
        self.message = self._message
        super(Exception, self).__init__(self._message)


class BaseInferenceToolkitError(Exception):
    def __init__(self, status_code, message, phrase):
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super(Exception, self).__init__(status_code, message, phrase)

    def __str__(self):
        return str(self.message)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    def __init__(self, status_code, message=None, phrase=None):
        message = message or "Invalid Request"
        phrase = phrase or message
        super(GenericInferenceToolkitError, self).__init__(status_code, message, phrase)
