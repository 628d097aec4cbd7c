"""Seldon's documented custom application error: an exception with status_code and
to_dict(), registered through a Flask blueprint named model_error_handler."""

import flask
from flask import jsonify


class UserCustomException(Exception):
    status_code = 404

    def __init__(self, message, application_error_code, http_status_code):
        Exception.__init__(self)
        self.message = message
        if application_error_code is not None:
            self.application_error_code = application_error_code
        if http_status_code is not None:
            self.status_code = http_status_code

    def to_dict(self):
        return {
            "status": {
                "status": 1,
                "info": self.message,
                "code": self.application_error_code,
                "reason": "Application Error",
            }
        }


class CustomError:
    model_error_handler = flask.Blueprint("error_handlers", __name__)

    @model_error_handler.app_errorhandler(UserCustomException)
    def handleCustomError(error):
        response = jsonify(error.to_dict())
        response.status_code = error.status_code
        return response

    def predict(self, X, features_names, **kwargs):
        raise UserCustomException("Test-Error-Msg", 1402, 402)
