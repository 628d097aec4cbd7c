"""predict_raw over V2: it gets the V2 request as its JSON dict and answers a V2 response dict."""


class V2Raw:
    def predict_raw(self, request):
        first = request["inputs"][0]
        if first["name"] == "boom":
            raise ValueError("boom was asked for")
        return {
            "outputs": [
                {"name": "keys", "datatype": "BYTES", "shape": [len(request)], "data": sorted(request)},
                {
                    "name": "first",
                    "datatype": first["datatype"],
                    "shape": first["shape"],
                    "data": first["data"],
                },
            ]
        }
