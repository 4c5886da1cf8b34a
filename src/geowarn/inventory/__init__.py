"""The hazard register (隐患点、风险区、受威胁户、避险点、责任人与监测人): the data of 一张图."""
